"""The rules of an exchange's life (DESIGN.md §2 and §4), as plain functions of what is known:
which decisions exist, from which states, who may take them, and what a timebank's policy
says once an exchange awaits approval. No SQL and no I/O here."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date

from timebank.auth.schemas import TimebankAccess
from timebank.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed, field_error
from timebank.exchanges.schemas import (
    Actor,
    ActorRole,
    ExchangeCreate,
    ExchangeRecord,
    ExchangeState,
    Policy,
    Side,
)


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


def manager_role(access: TimebankAccess) -> Actor:
    """The actor a coordinator (or a site admin) is recorded as."""
    role: ActorRole = "coordinator" if access.is_coordinator else "admin"
    return Actor(user_id=access.principal.user_id, role=role)


def member_actor(access: TimebankAccess) -> Actor:
    return Actor(user_id=access.principal.user_id, role="member")


def require_exchange_reader(access: TimebankAccess) -> None:
    """Members (their own exchanges), coordinators and admins; never funders, who see
    aggregates only."""
    if not access.can_manage and access.member_participant_id is None:
        raise Forbidden("exchanges are for members and coordinators of this timebank")


def require_visible(access: TimebankAccess, exchange: ExchangeRecord | None) -> ExchangeRecord:
    """The exchange, if the caller may see it; a member sees only exchanges they are party to
    (anything else is 'not found', so nobody can probe for other people's exchanges)."""
    if exchange is None or not (
        access.can_manage or access.member_participant_id in exchange.parties
    ):
        raise NotFound("exchange not found in this timebank")
    return exchange


def who_logs(access: TimebankAccess, data: ExchangeCreate) -> tuple[Actor, Side, bool]:
    """Who is logging this exchange: ``(actor, logged_for, on_behalf)``.

    A member logs an exchange they are party to, for their own side; a coordinator or admin
    logs any, on behalf of either party (the giver unless told otherwise)."""
    me = access.member_participant_id
    if me is not None and me in (data.giver_id, data.receiver_id):
        side: Side = "giver" if me == data.giver_id else "receiver"
        if data.logged_for is not None and data.logged_for != side:
            raise ValidationFailed(
                f"you are the {side} of this exchange, so you log it as the {side}",
                errors=[field_error("logged_for", f"must be {side!r} (or left out)")],
            )
        return member_actor(access), side, False
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
    if action in COUNTERPARTY_DECISIONS and access.member_participant_id is None:
        raise Forbidden(f"only the other party to an exchange may {action} it")
    require_exchange_reader(access)


def decider(access: TimebankAccess, exchange: ExchangeRecord, action: str) -> Actor:
    """The actor who may take ``action`` on this (visible) exchange, or why not."""
    me = access.member_participant_id
    if action in COUNTERPARTY_DECISIONS:
        if me != exchange.counterparty_id:
            raise Forbidden(f"only the other party (not the one who logged it) may {action} it")
        return member_actor(access)
    if action in COORDINATOR_DECISIONS:
        # Nobody decides on an exchange they are part of, coordinators included.
        if me is not None and me in exchange.parties:
            raise Forbidden(f"someone else must {action} an exchange you are part of")
        return manager_role(access)
    if action == "cancel":
        if exchange.logged_by_user_id == access.principal.user_id:
            return manager_role(access) if exchange.on_behalf else member_actor(access)
        # A party who did not log it disputes instead, even if they also coordinate.
        if access.can_manage and not (me is not None and me in exchange.parties):
            return manager_role(access)
        raise Forbidden("only whoever logged an exchange, or a coordinator, may cancel it")
    raise ValueError(f"unknown decision {action!r}")


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


def state_after_logging(policy: Policy, *, on_behalf: bool) -> ExchangeState:
    """A member's exchange waits for the other party when the timebank asks for confirmation;
    one logged by a coordinator does not."""
    if policy.confirmation_required and not on_behalf:
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
