"""Who has a part in a timebank is decided once (``has_part``): the database only reads the
facts it decides from, on every door that asks."""

import pytest

from tests.people import make_person
from timebank.auth import repository as auth_repository
from timebank.auth.schemas import Principal, has_part
from timebank.auth.secrets import hash_token
from timebank.auth.service import AuthService
from timebank.auth.sessions import access_from_row
from timebank.errors import NotFound
from timebank.settings import Settings


def test_an_admin_or_anyone_holding_a_role_has_a_part():
    assert has_part(True, frozenset())
    assert has_part(False, frozenset({"funder"}))
    assert has_part(True, frozenset({"member"}))
    assert not has_part(False, frozenset())


@pytest.mark.parametrize(
    ("is_admin", "roles_here", "roles_elsewhere"),
    [
        (False, (), ()),
        (False, (), ("coordinator",)),
        (False, ("funder",), ()),
        (True, (), ()),
        (True, ("coordinator",), ("member",)),
    ],
)
async def test_every_door_agrees_with_has_part(
    engine, world, is_admin, roles_here, roles_elsewhere
):
    here, elsewhere = world.timebank, world.other_timebank
    person = await make_person(engine, "part", is_admin=is_admin, timebank=here, roles=roles_here)
    async with engine.begin() as conn:
        for role in roles_elsewhere:
            await auth_repository.grant_role(conn, elsewhere.id, person.user_id, role)
    expected_here = has_part(is_admin, roles_here)

    auth = AuthService(engine, Settings())
    found = await auth.authenticate_in(person.token, here.slug)
    assert found is not None
    principal, access = found
    assert (access is not None) == expected_here
    assert isinstance(principal, Principal)
    try:
        await auth.access(principal, here.slug)
        answered = True
    except NotFound:
        answered = False
    assert answered == expected_here

    row = await auth.caller_in(hash_token(person.token), here.slug)
    assert row is not None
    assert (access_from_row(row, here.slug, via_cookie=False)[1] is not None) == expected_here

    async with engine.connect() as conn:
        admin, roles = await auth_repository.roles_anywhere(conn, person.user_id)
    assert (admin, roles) == (is_admin, frozenset(roles_here) | frozenset(roles_elsewhere))
    assert has_part(admin, roles) == has_part(is_admin, (*roles_here, *roles_elsewhere))
