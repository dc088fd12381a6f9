"""Rules written twice, held to one answer: whether a participant takes part in exchanges (SQL,
``exchanges.repository.takes_part``) is what ``TimebankAccess.party_id`` says of their user;
the caller the log statement reads is the one ``principal_in_timebank`` reads."""

from itertools import combinations

import pytest

from tests.people import make_person
from timebank.auth import repository as auth_repository
from timebank.auth.schemas import Principal, TimebankAccess
from timebank.auth.secrets import hash_token
from timebank.auth.sessions import access_from_row
from timebank.db.transactions import raw_connection
from timebank.exchanges import repository
from timebank.exchanges.log_statements import caller_and_log_context

ROLES = ("member", "coordinator", "funder")
EVERY_ROLE_SET = [set(chosen) for size in range(4) for chosen in combinations(ROLES, size)]


@pytest.mark.parametrize("is_admin", [False, True])
@pytest.mark.parametrize("roles", EVERY_ROLE_SET, ids=lambda roles: "+".join(sorted(roles)))
async def test_taking_part_is_decided_alike_in_sql_and_in_python(engine, timebank, is_admin, roles):
    person = await make_person(
        engine, "pat", is_admin=is_admin, timebank=timebank, roles=tuple(roles), participant=True
    )
    assert person.participant_id is not None
    async with raw_connection(engine) as conn:
        party = await repository.get_party(conn, timebank.id, person.participant_id)
    principal = Principal(user_id=person.user_id, email=person.email, is_admin=is_admin, token_id=1)
    in_python = is_admin or bool(roles)  # with neither, the user has no access to be a party
    if in_python:
        access = TimebankAccess(principal, timebank.id, timebank.slug, frozenset(roles), party.id)
        in_python = access.party_id is not None
    assert party is not None and party.takes_part == in_python


@pytest.mark.parametrize("is_admin", [False, True])
@pytest.mark.parametrize("roles", [(), ("member",), ("funder",), ("coordinator",)])
async def test_the_log_statement_reads_the_caller_as_the_auth_layer_does(
    engine, timebank, is_admin, roles
):
    person = await make_person(engine, "lou", is_admin=is_admin, timebank=timebank, roles=roles)
    token_hash = hash_token(person.token)
    for slug in (timebank.slug, "no-such-timebank"):
        async with raw_connection(engine) as conn:
            expected = await auth_repository.principal_in_timebank(conn, token_hash, slug)
            found = await caller_and_log_context(conn, token_hash, slug, 1, 2, "x", None, b"")
        assert expected is not None and found.caller is not None
        assert {name: found.caller[name] for name in expected.keys()} == dict(expected)
        has_access = access_from_row(found.caller, slug, via_cookie=False)[1] is not None
        assert (found.context is not None) == has_access
    async with raw_connection(engine) as conn:
        nobody = await caller_and_log_context(conn, b"0" * 32, timebank.slug, 1, 2, "x", None, b"")
    assert nobody.caller is None and nobody.context is None
