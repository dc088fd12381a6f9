"""The decisions a page offers are the decisions the service takes: for every kind of caller,
every state and every way an exchange was logged, ``policy.open_decisions`` is exactly the set
of decisions that pass the checks ``Exchanges.decide`` makes, in its order."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from timebank.auth.schemas import Principal, TimebankAccess
from timebank.errors import Forbidden, InvalidTransition, NotFound
from timebank.exchanges import policy
from timebank.exchanges.schemas import ExchangeState, Side

GIVER, RECEIVER, OUTSIDER = 1, 2, 3
STATES: tuple[ExchangeState, ...] = (
    "logged",
    "awaiting_approval",
    "disputed",
    "approved",
    "rejected",
    "cancelled",
    "reversed",
)


@dataclass(frozen=True)
class Exchange:
    """What the rules read of an exchange between GIVER and RECEIVER."""

    state: ExchangeState
    logged_for: Side
    logged_by_user_id: int | None
    on_behalf: bool
    id: int = 1
    giver_id: int = GIVER
    receiver_id: int = RECEIVER
    group_id: int | None = None


def _access(user_id: int, roles: set[str], participant_id: int | None = None, admin=False):
    principal = Principal(user_id=user_id, email="x@example.org", is_admin=admin, token_id=1)
    return TimebankAccess(principal, 1, "tb", frozenset(roles), participant_id)


CALLERS = {
    "giver": _access(11, {"member"}, GIVER),
    "receiver": _access(12, {"member"}, RECEIVER),
    "giver who coordinates": _access(11, {"member", "coordinator"}, GIVER),
    "coordinator": _access(13, {"coordinator"}),
    "coordinator with a participant": _access(13, {"coordinator"}, OUTSIDER),
    "admin": _access(14, set(), admin=True),
    "other member": _access(15, {"member"}, OUTSIDER),
    "funder": _access(16, {"funder"}, OUTSIDER),
}
EXCHANGES = [
    Exchange(state, logged_for, logged_by, on_behalf)
    for state, logged_for, (logged_by, on_behalf) in itertools.product(
        STATES, ("giver", "receiver"), ((11, False), (12, False), (13, True), (None, True))
    )
]


def _taken_by_the_service(access: TimebankAccess, exchange: Exchange, action: str) -> bool:
    try:
        policy.require_may_attempt(access, action)
        policy.require_visible(access, exchange)  # type: ignore[arg-type]
        policy.decider(access, exchange, action)
        policy.require_from_state(action, exchange)  # type: ignore[arg-type]
    except (Forbidden, NotFound, InvalidTransition):
        return False
    return True


@pytest.mark.parametrize("caller", CALLERS)
def test_a_page_offers_what_the_service_takes(caller: str):
    access = CALLERS[caller]
    for exchange in EXCHANGES:
        taken = {a for a in policy.TRANSITIONS if _taken_by_the_service(access, exchange, a)}
        assert policy.open_decisions(access, exchange) == taken, exchange
        assert policy.waits_for(access, exchange) == ("confirm" in taken)


def test_only_the_other_party_is_waited_for():
    logged_by_giver = Exchange("logged", "giver", 11, False)
    assert policy.waits_for(CALLERS["receiver"], logged_by_giver)
    assert not policy.waits_for(CALLERS["giver"], logged_by_giver)
    assert not policy.waits_for(CALLERS["coordinator"], logged_by_giver)
    assert not policy.waits_for(CALLERS["receiver"], Exchange("disputed", "giver", 11, False))
