"""The rules of an exchange's life (DESIGN.md §2 and §4), as plain functions of what is known:
which decisions exist, from which states, who may take them, and what a timebank's policy
says once an exchange awaits approval. No SQL and no I/O here."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
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
    GroupSessionDetail,
    Party,
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
    @property
    def group_id(self) -> int | None: ...


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
    access.require_active("log exchanges")
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


DEACTIVATED = "is deactivated"


def require_active_parties(named: Iterable[tuple[str, Party]]) -> None:
    """Refuse a new exchange or session with someone a coordinator has deactivated (409),
    naming the first of them by the field that names them: ``(field, party)`` pairs."""
    for name, party in named:
        if not party.active:
            raise InvalidTransition(
                f"participant {party.id} is deactivated in this timebank; a coordinator"
                " reactivates them before anything new is logged with them",
                participant_id=party.id,
                errors=[field_error(name, DEACTIVATED)],
            )


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
        if exchange.group_id is not None and action not in COUNTERPARTY_DECISIONS:
            continue  # a leg of a session: its session is decided as one
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


# ---------------------------------------------------------------------------------------------
# Group sessions: one record of many legs, decided as one.
# ---------------------------------------------------------------------------------------------


class LegLike(Protocol):
    @property
    def giver_id(self) -> int: ...
    @property
    def receiver_id(self) -> int: ...


def host_of(legs: Sequence[LegLike], host_id: int | None = None) -> tuple[int, Side]:
    """The host of a session's legs and the host's side: ``host_id`` if given, else the one
    participant on the same side of every leg (the giver, for a single leg); each other
    participant is on the other side of one leg only. Anything else is not one session (422,
    naming the leg at fault)."""
    givers = {leg.giver_id for leg in legs}
    receivers = {leg.receiver_id for leg in legs}
    side: Side
    if host_id is not None and givers == {host_id}:
        host, side = host_id, "giver"
    elif host_id is not None and receivers == {host_id}:
        host, side = host_id, "receiver"
    elif host_id is not None:
        raise ValidationFailed(
            "the host gives to every attendee or receives from each: they are the giver of"
            " every leg, or the receiver of every leg",
            errors=[field_error("host_id", "must be on the same side of every leg")],
        )
    elif len(givers) == 1:
        host, side = legs[0].giver_id, "giver"
    elif len(receivers) == 1:
        host, side = legs[0].receiver_id, "receiver"
    else:
        raise ValidationFailed(
            "a group session has one host who gives to every attendee or receives from each:"
            " every leg shares the same giver, or the same receiver",
            errors=[field_error("legs", "one giver for every leg, or one receiver")],
        )
    others = [leg.receiver_id if side == "giver" else leg.giver_id for leg in legs]
    seen: set[int] = set()
    other_side = "receiver_id" if side == "giver" else "giver_id"
    for n, attendee in enumerate(others):
        if attendee == host:
            raise ValidationFailed(
                "the host cannot attend their own session",
                errors=[field_error(f"legs.{n}.{other_side}", "must differ from the host")],
            )
        if attendee in seen:
            raise ValidationFailed(
                f"participant {attendee} is in the session twice; give each attendee one leg",
                errors=[field_error(f"legs.{n}.{other_side}", "already in an earlier leg")],
            )
        seen.add(attendee)
    return host, side


def who_logs_group(
    access: TimebankAccess, host: int, host_side: Side, attendees: Collection[int]
) -> tuple[Actor, bool]:
    """Who is logging this session, ``(actor, on_behalf)``: its host, for their own side; or
    a coordinator or admin on the host's behalf. An attendee does not log a session (they
    confirm or dispute their own leg), nor does a coordinator who attends it."""
    access.require_active("log sessions")
    me = access.party_id
    if me is not None and me == host:
        return party_actor(access), False
    if me is not None and me in attendees:
        raise Forbidden(
            "a group session is logged by its host or a coordinator; you confirm your own leg"
        )
    if access.can_manage:
        actor = manager_role(access)
        return Actor(actor.user_id, actor.role, host), True
    if me is not None:
        raise Forbidden("members log sessions they host; ask a coordinator")
    raise Forbidden("only members and coordinators of this timebank log sessions")


def group_state(states: Collection[ExchangeState]) -> ExchangeState:
    """A session's state from its legs': theirs when they agree; while they differ, what holds
    the session up (a dispute, then an attendee still to confirm); once rejected or cancelled
    (legs logged are cancelled when the rest are rejected), rejected if any leg was."""
    distinct = set(states)
    if len(distinct) == 1:
        return next(iter(distinct))
    for waiting in ("disputed", "logged", "rejected", "cancelled"):
        if waiting in distinct:
            return waiting  # type: ignore[return-value]
    return "awaiting_approval"


def group_leg_action(action: str, leg_state: ExchangeState) -> str:
    """The decision a session's ``action`` takes on a leg in ``leg_state``: the same, except
    that rejecting a session cancels the legs still waiting for their attendee (nobody has
    confirmed them, so there is nothing to reject)."""
    if action == "reject" and leg_state == "logged":
        return "cancel"
    return action


def require_group_ready(action: str, states: Collection[ExchangeState]) -> None:
    """Refuse a session's ``action`` its legs do not allow together."""
    if action == "approve" and "logged" in states:
        raise InvalidTransition(
            "the session waits for attendees to confirm their legs; it can be approved once"
            " none is left to confirm (or rejected now)",
            state="logged",
        )
    if action == "cancel" and "disputed" in states:
        raise InvalidTransition(
            "an attendee disputed their leg; a coordinator approves or rejects the session",
            state="disputed",
        )


@dataclass(frozen=True)
class SessionLeg:
    """A leg of a session as the rules see it: every leg shares its session's logging."""

    giver_id: int
    receiver_id: int
    logged_for: Side
    logged_by_user_id: int | None
    on_behalf: bool
    state: ExchangeState
    group_id: int | None = None


def session_legs(session: GroupSessionDetail) -> list[SessionLeg]:
    """The legs of a session's answer, as the rules see them."""
    return [
        SessionLeg(
            leg.giver_id,
            leg.receiver_id,
            session.host_side,
            session.logged_by_user_id,
            session.on_behalf,
            leg.state,
        )
        for leg in session.legs
    ]


def open_group_decisions(access: TimebankAccess, legs: Sequence[SessionLeg]) -> frozenset[str]:
    """The decisions the caller may take on a session now, by the rules ``decide`` applies:
    confirm or dispute their own leg; approve, reject, cancel or reverse the whole."""
    states = [leg.state for leg in legs]
    open_now = set()
    for action, transition in TRANSITIONS.items():
        try:
            require_may_attempt(access, action)
            if action in COUNTERPARTY_DECISIONS:
                mine = [leg for leg in legs if counterparty_of(leg) == access.party_id]
                if not mine or mine[0].state not in transition.from_states:
                    continue
                decider(access, mine[0], action)
            else:
                require_group_ready(action, states)
                for leg in legs:
                    leg_action = group_leg_action(action, leg.state)
                    if leg.state not in TRANSITIONS[leg_action].from_states:
                        raise InvalidTransition("not now")
                    decider(access, leg, leg_action)
        except (Forbidden, InvalidTransition):
            continue
        open_now.add(action)
    return frozenset(open_now)
