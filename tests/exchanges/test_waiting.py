"""What waits for someone, counted in SQL, is what ``policy.waits_for`` says of each exchange;
and a page names exactly the people it asks for, of its own timebank only."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.exchanges.conftest import Api, exchange_body
from tests.people import Person, World
from timebank.auth.schemas import Principal, TimebankAccess
from timebank.errors import Forbidden
from timebank.exchanges import policy
from timebank.exchanges.schemas import ExchangeFilters
from timebank.exchanges.service import Exchanges
from timebank.exchanges.waiting import count_waiting
from timebank.participants.names import names_of


def _access(world: World, person: Person, *roles: str, admin: bool = False) -> TimebankAccess:
    principal = Principal(user_id=person.user_id, email=person.email, is_admin=admin, token_id=1)
    return TimebankAccess(
        principal, world.timebank.id, world.timebank.slug, frozenset(roles), person.participant_id
    )


async def test_the_count_of_what_waits_is_the_policys(api: Api, world: World, engine):
    ada, bea = world.member, world.other_member
    await api.logged(ada, exchange_body(ada, bea, 30))  # Ada gave: waits for Bea
    await api.logged(bea, exchange_body(ada, bea, 45))  # Bea received: waits for Ada
    await api.logged(bea, exchange_body(bea, ada, 60))  # Bea gave: waits for Ada
    disputed = await api.logged(ada, exchange_body(ada, bea, 15))
    await api.decided(bea, disputed["id"], "dispute", "not me")
    await api.logged(world.coordinator, exchange_body(ada, bea, 20))  # on behalf: no one
    callers = [
        _access(world, ada, "member"),
        _access(world, bea, "member"),
        _access(world, world.coordinator, "coordinator"),
        _access(world, world.funder, "funder"),
        _access(world, world.admin, admin=True),
    ]
    everything = await Exchanges(engine).list(callers[-1], ExchangeFilters(limit=100))
    counted = [await count_waiting(engine, access) for access in callers]
    expected = [sum(policy.waits_for(a, e) for e in everything.items) for a in callers]
    assert counted == expected == [2, 1, 0, 0, 0]


async def test_a_page_names_exactly_whom_it_asks_for(world: World, engine: AsyncEngine):
    ada, bea, cy = world.member, world.other_member, world.stranger_member
    access = _access(world, ada, "member")
    named = await names_of(engine, access, [ada.participant_id, bea.participant_id, None])
    assert named == {ada.participant_id: "Ada", bea.participant_id: "Bea"}
    assert await names_of(engine, access, [cy.participant_id]) == {}  # another timebank's
    with pytest.raises(Forbidden):
        await names_of(engine, _access(world, world.funder, "funder"), [ada.participant_id])
