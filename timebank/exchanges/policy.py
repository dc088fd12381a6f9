"""The rules of an exchange's life (DESIGN.md §2 and §4), as plain functions of what is known:
which decisions exist, from which states, who may take them, and what a timebank's policy
says once an exchange awaits approval. No SQL and no I/O here."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from timebank.auth.schemas import TimebankAccess
from timebank.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed, field_error
from timebank.exchanges.schemas import (
    Actor,
    ActorRole,
    ExchangeCreate,
    ExchangeRecord,
    ExchangeState,
    Side,
)
from timebank.policy import Policy


@dataclass(frozen=True)
class Transition:
    from_states: frozenset[ExchangeState]
    to_state: ExchangeState
    reason_required: bool = False


TRANSITIONS: dict[str, Transition] = {
    "confirm": Transition(frozenset({"logged"}), "awaiting_approval"),
    "dispute": Transition(frozenset({"logged"}), "disputed", reason_required=True),
    "approve": Transition(frozenset({"awaiting_approval", "disputed"}), "approved"),
    "reject": Transition(frozenset({"awaiting_approval", "disputed"}), "rejected"),
    "cancel": Transition(frozenset({"logged", "awaiting_approval"}), "cancelled"),
    "reverse": Transition(frozenset({"approved"}), "reversed", reason_required=True),
}

COUNTERPARTY_DECISIONS = frozenset({"confirm", "dispute"})
COORDINATOR_DECISIONS = frozenset({"approve", "reject", "reverse"})


# ---------------------------------------------------------------------------------------------
# Who may do what.
# ---------------------------------------------------------------------------------------------


class Decidable(Protocol):
    """What the rules read of an exchange: a record of the service or an API answer alike."""

    @property
    def giver_id(self) -> int: ...
    @property
    def receiver_id(self) -> int: ...
    @property
    def logged_for(self) -> Side: ...
    @property
    def logged_by_user_id(self) -> int | None: ...
    @property
    def on_behalf(self) -> bool: ...
    @property
    def state(self) -> ExchangeState: ...


def counterparty_of(exchange: Decidable) -> int:
    """The party who did not log it: the one who confirms or disputes."""
    return exchange.receiver_id if exchange.logged_for == "giver" else exchange.giver_id


def _is_party(access: TimebankAccess, exchange: Decidable) -> bool:
    """Whether the caller's own participant (whatever their roles) is giver or receiver."""
    me = access.participant_id
    return me is not None and me in (exchange.giver_id, exchange.receiver_id)


def manager_role(access: TimebankAccess) -> Actor:
    """The actor a coordinator (or a site admin) is recorded as."""
    role: ActorRole = "coordinator" if access.is_coordinator else "admin"
    return Actor(user_id=access.principal.user_id, role=role)


def party_actor(access: TimebankAccess) -> Actor:
    """The actor someone is recorded as when they act as a party ('member'), whatever else
    they are in the timebank."""
    return Actor(user_id=access.principal.user_id, role="member")


def require_exchange_reader(access: TimebankAccess) -> None:
    """Parties (their own exchanges), coordinators and admins; never funders, who see
    aggregates only."""
    if not access.can_manage and access.party_id is None:
        raise Forbidden("exchanges are for members and coordinators of this timebank")


def require_visible(access: TimebankAccess, exchange: ExchangeRecord | None) -> ExchangeRecord:
    """The exchange, if the caller may see it; a member sees only exchanges they are party to
    (anything else is 'not found', so nobody can probe for other people's exchanges)."""
    if exchange is None or not (
        access.can_manage or (access.party_id is not None and _is_party(access, exchange))
    ):
        raise NotFound("exchange not found in this timebank")
    return exchange


def who_logs(access: TimebankAccess, data: ExchangeCreate) -> tuple[Actor, Side, bool]:
    """Who is logging this exchange: ``(actor, logged_for, on_behalf)``.

    Whoever is party to it logs it as that party, for their own side, coordinators included
    (so the other side confirms and another coordinator approves); a coordinator or admin
    logs any other on behalf of either party (the giver unless told otherwise)."""
    me = access.party_id
    if me is not None and me in (data.giver_id, data.receiver_id):
        side: Side = "giver" if me == data.giver_id else "receiver"
        if data.logged_for is not None and data.logged_for != side:
            raise ValidationFailed(
                f"you are the {side} of this exchange, so you log it as the {side}",
                errors=[field_error("logged_for", f"must be {side!r} (or left out)")],
            )
        return party_actor(access), side, False
    if access.can_manage:
        side = data.logged_for or "giver"
        on_behalf_of = data.giver_id if side == "giver" else data.receiver_id
        actor = manager_role(access)
        return Actor(actor.user_id, actor.role, on_behalf_of), side, True
    if me is not None:
        raise Forbidden("members log exchanges they gave or received; ask a coordinator")
    raise Forbidden("only members and coordinators of this timebank log exchanges")


def require_may_attempt(access: TimebankAccess, action: str) -> None:
    """Refuse, before looking anything up, a decision the caller's roles never allow."""
    if action in COORDINATOR_DECISIONS and not access.can_manage:
        raise Forbidden(f"only a coordinator may {action} an exchange")
    if action in COUNTERPARTY_DECISIONS and access.party_id is None:
        raise Forbidden(f"only the other party to an exchange may {action} it")
    require_exchange_reader(access)


def decider(access: TimebankAccess, exchange: Decidable, action: str) -> Actor:
    """The actor who may take ``action`` on this (visible) exchange, or why not. Nobody
    decides on an exchange their own participant is part of, whatever their roles: they
    confirm, dispute or cancel it as a party."""
    if action in COUNTERPARTY_DECISIONS:
        if access.party_id is None or access.party_id != counterparty_of(exchange):
            raise Forbidden(f"only the other party (not the one who logged it) may {action} it")
        return party_actor(access)
    if action in COORDINATOR_DECISIONS:
        if not access.can_manage:
            raise Forbidden(f"only a coordinator may {action} an exchange")
        if _is_party(access, exchange):
            raise Forbidden(f"someone else must {action} an exchange you are part of")
        return manager_role(access)
    if action == "cancel":
        if exchange.logged_by_user_id == access.principal.user_id:
            return manager_role(access) if exchange.on_behalf else party_actor(access)
        # A party who did not log it disputes instead, even if they also coordinate. A
        # coordinator who is not party can always end an exchange nobody else can move on.
        if access.can_manage and not _is_party(access, exchange):
            return manager_role(access)
        raise Forbidden("only whoever logged an exchange, or a coordinator, may cancel it")
    raise ValueError(f"unknown decision {action!r}")


def open_decisions(access: TimebankAccess, exchange: Decidable) -> frozenset[str]:
    """The decisions the caller may take on this exchange now: what pages offer, by the very
    rules the service's ``decide`` applies to a decision sent. (The timebank's policy decides
    where an exchange goes after logging, not who decides on it.)"""
    open_now = set()
    for action, transition in TRANSITIONS.items():
        if exchange.state not in transition.from_states:
            continue
        try:
            require_may_attempt(access, action)
            decider(access, exchange, action)
        except Forbidden:
            continue
        open_now.add(action)
    return frozenset(open_now)


def waits_for(access: TimebankAccess, exchange: Decidable) -> bool:
    """Whether the exchange waits for the caller: the other party logged it, and it is the
    caller's to confirm or dispute (``exchanges.waiting`` counts these in one query)."""
    return "confirm" in open_decisions(access, exchange)


def clean_reason(action: str, reason: str | None) -> str | None:
    """The reason as stored (blank means none); refuse a decision that needs one without it."""
    text = reason.strip() if reason else ""
    if TRANSITIONS[action].reason_required and not text:
        raise ValidationFailed(
            f"say why: a reason is required to {action} an exchange",
            errors=[field_error("reason", "required")],
        )
    return text or None


_PAST = {
    "confirm": "confirmed",
    "dispute": "disputed",
    "approve": "approved",
    "reject": "rejected",
    "cancel": "cancelled",
    "reverse": "reversed",
}


def require_from_state(action: str, exchange: ExchangeRecord) -> Transition:
    transition = TRANSITIONS[action]
    if exchange.state not in transition.from_states:
        allowed = " or ".join(sorted(transition.from_states))
        raise InvalidTransition(
            f"exchange {exchange.id} is {exchange.state}; it can be {_PAST[action]} only when"
            f" {allowed}",
            state=exchange.state,
        )
    return transition


# ---------------------------------------------------------------------------------------------
# The timebank's policy.
# ---------------------------------------------------------------------------------------------


def state_after_logging(policy: Policy, *, on_behalf: bool, logged_for: Side) -> ExchangeState:
    """A party's exchange waits for the other party when the timebank asks for confirmation,
    and, whatever the policy, when it debits the other party (the giver logged it): nobody's
    balance goes down without their confirmation. One a coordinator logs on behalf of the
    parties does not wait."""
    if on_behalf:
        return "awaiting_approval"
    if policy.confirmation_required or logged_for == "giver":
        return "logged"
    return "awaiting_approval"


def review_reasons(
    policy: Policy,
    *,
    minutes: int,
    service_date: date,
    party_kinds: Iterable[str],
    first_timers: Collection[int],
    today: date,
) -> list[str]:
    """The review rules of an 'automatic unless' policy that this exchange fires."""
    reasons = []
    if policy.review_above_minutes is not None and minutes > policy.review_above_minutes:
        reasons.append(f"more than {policy.review_above_minutes} minutes")
    if (
        policy.review_backdated_days is not None
        and (today - service_date).days > policy.review_backdated_days
    ):
        reasons.append(f"backdated more than {policy.review_backdated_days} days")
    if policy.review_organisation and "organisation" in party_kinds:
        reasons.append("involves an organisation")
    if policy.review_first_exchange and first_timers:
        reasons.append("a participant's first exchange")
    return reasons


def approves_automatically(policy: Policy, reasons: Collection[str]) -> bool:
    """Whether an exchange now awaiting approval is approved at once, without a coordinator."""
    if policy.approval_mode == "automatic":
        return True
    return policy.approval_mode == "automatic_unless" and not reasons
