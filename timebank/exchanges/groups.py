"""Group sessions (DESIGN.md §3): one record of many legs, each leg an exchange between the host
and one attendee, logged in one transaction and decided as one.

Logging locks every account the session touches, in ascending id order, checks every leg
against the policy and the limits before it writes one (so a refusal names the attendee at
fault and writes nothing), then logs each leg with the statements that log an exchange, and
joins them to the session's row. Every decision on a session, or on one of its legs, locks the
session's row first, so they take turns; the legs then move together."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date

from timebank.auth.schemas import TimebankAccess
from timebank.db.statements import Connection
from timebank.errors import (
    Forbidden,
    InvalidTransition,
    LimitExceeded,
    NotFound,
    ValidationFailed,
    field_error,
)
from timebank.exchanges import decisions, policy, repository
from timebank.exchanges import group_statements as sql
from timebank.exchanges.log import NO_PART_IN_EXCHANGES, check_key, check_service_date, memo
from timebank.exchanges.log_statements import (
    NewExchange,
    insert_approved_exchange,
    insert_exchange,
    key_author,
)
from timebank.exchanges.schemas import (
    POLICY_ACTOR,
    ExchangeDetail,
    ExchangeRecord,
    GroupLogResult,
    GroupRecord,
    GroupSessionCreate,
    GroupSessionDetail,
    LegPublic,
    Party,
    Policy,
)
from timebank.ledger import idempotency
from timebank.ledger import repository as ledger
from timebank.ledger.idempotency import fingerprint
from timebank.ledger.schemas import LockedAccount

KEY_OPERATION = "log_group_session"


def check(access: TimebankAccess, data: GroupSessionCreate, key: str | None) -> None:
    """Refusals of a session that need no database beyond the caller's access."""
    host, side = policy.host_of(data.legs, data.host_id)
    policy.who_logs_group(access, host, side, _attendees(data, side))
    check_service_date(data.service_date, today=date.today())
    check_key(key)


def _attendees(data: GroupSessionCreate, host_side: str) -> list[int]:
    if host_side == "giver":
        return [leg.receiver_id for leg in data.legs]
    return [leg.giver_id for leg in data.legs]


async def log_group(
    conn: Connection, *, access: TimebankAccess, data: GroupSessionCreate, key: str | None
) -> GroupLogResult:
    """Log a session in the caller's transaction: every leg or none."""
    timebank_id = access.timebank_id
    host, host_side = policy.host_of(data.legs, data.host_id)
    attendees = _attendees(data, host_side)
    actor, on_behalf = policy.who_logs_group(access, host, host_side, attendees)
    author = key_author(access.principal.user_id)
    if key is not None:
        request = fingerprint(KEY_OPERATION, data.model_dump(mode="json"))
        answered = await idempotency.claim_key(conn, timebank_id, author, key, request)
        if answered is not None:
            replayed = await group_detail(conn, access, int(answered["group_id"]))
            return GroupLogResult(replayed, replayed=True)

    rules = await repository.get_policy(conn, timebank_id)
    found = await sql.parties(conn, timebank_id, [host, *attendees])
    category = await sql.category(conn, timebank_id, data.category)
    _require_parties_and_category(data, found, category, rules)
    assert category is not None
    policy.require_active_parties(
        (f"legs.{n}.{name}", found[getattr(leg, name)])
        for n, leg in enumerate(data.legs)
        for name in ("giver_id", "receiver_id")
    )
    accounts = await ledger.lock_accounts(conn, timebank_id, [p.account_id for p in found.values()])
    _require_open(data, found, accounts, host_side)

    state = policy.state_after_logging(rules, on_behalf=on_behalf, logged_for=host_side)
    reasons: list[str] = []
    if state == "awaiting_approval":
        reasons = await review_reasons(conn, rules, timebank_id, data, found)
    approve_now = state == "awaiting_approval" and policy.approves_automatically(rules, reasons)
    _require_within_limits(data, found, accounts, host, host_side)

    total = sum(leg.minutes for leg in data.legs)
    group_id = await sql.insert_group(
        conn,
        timebank_id=timebank_id,
        host_id=host,
        host_side=host_side,
        legs=len(data.legs),
        minutes=total,
        service_date=data.service_date,
        category_id=category[0],
        description=data.description,
        logged_by_user_id=access.principal.user_id,
        on_behalf=on_behalf,
    )
    leg_memo = memo(category[1], data.description)
    leg_ids = []
    for leg in data.legs:
        new = NewExchange(
            timebank_id=timebank_id,
            giver_id=leg.giver_id,
            receiver_id=leg.receiver_id,
            minutes=leg.minutes,
            service_date=data.service_date,
            category_id=category[0],
            category=data.category,
            description=data.description,
            logged_by_user_id=access.principal.user_id,
            logged_for=host_side,
            on_behalf=on_behalf,
            debit_account_id=found[leg.receiver_id].account_id,
            credit_account_id=found[leg.giver_id].account_id,
            memo=leg_memo,
            actor=actor,
            keyed=None,
        )
        if approve_now:
            approved = await insert_approved_exchange(
                conn, new, approver=POLICY_ACTOR, approval_reason=decisions.AUTO_APPROVAL_REASON
            )
            assert approved is not None, "a leg is written without a key of its own"
            leg_ids.append(approved[0].id)
        else:
            logged = await insert_exchange(
                conn, new, state=state, review_reason="; ".join(reasons) or None
            )
            assert logged is not None, "a leg is written without a key of its own"
            leg_ids.append(logged[0].id)
    await sql.join_legs(conn, timebank_id, group_id, leg_ids)
    if key is not None:
        await idempotency.answer_key(conn, timebank_id, author, key, {"group_id": group_id})
    return GroupLogResult(await group_detail(conn, access, group_id), replayed=False)


def _require_parties_and_category(
    data: GroupSessionCreate,
    found: dict[int, Party],
    category: tuple[int, str] | None,
    rules: Policy,
) -> None:
    errors = []
    for n, leg in enumerate(data.legs):
        for name in ("giver_id", "receiver_id"):
            participant = getattr(leg, name)
            party = found.get(participant)
            if party is None:
                errors.append(field_error(f"legs.{n}.{name}", "no such participant here"))
            elif not party.takes_part:
                errors.append(field_error(f"legs.{n}.{name}", NO_PART_IN_EXCHANGES))
        if leg.minutes > rules.max_exchange_minutes:
            errors.append(
                field_error(
                    f"legs.{n}.minutes",
                    f"at most {rules.max_exchange_minutes} minutes per attendee",
                )
            )
    if category is None:
        errors.append(field_error("category", "no such category in this timebank"))
    if errors:
        unique = list({error["key"]: error for error in errors}.values())
        names = ", ".join(error["key"] for error in unique)
        raise ValidationFailed(f"please check: {names}", errors=unique)


def _require_open(
    data: GroupSessionCreate,
    found: dict[int, Party],
    accounts: dict[int, LockedAccount],
    host_side: str,
) -> None:
    """Refuse a session with someone who has left (their account is closed)."""
    for n, leg in enumerate(data.legs):
        for name in ("giver_id", "receiver_id"):
            participant = getattr(leg, name)
            if accounts[found[participant].account_id].closed:
                raise InvalidTransition(
                    f"participant {participant} has left the timebank; nothing moves on their"
                    " account",
                    participant_id=participant,
                    errors=[field_error(f"legs.{n}.{name}", "has left the timebank")],
                )


def _require_within_limits(
    data: GroupSessionCreate,
    found: dict[int, Party],
    accounts: dict[int, LockedAccount],
    host: int,
    host_side: str,
) -> None:
    """Refuse the whole session, naming the first participant (an attendee, in the order of
    the legs, else the host) whose limits it would cross; writes nothing."""
    held_in: dict[int, int] = defaultdict(int)
    held_out: dict[int, int] = defaultdict(int)
    for leg in data.legs:
        held_in[leg.giver_id] += leg.minutes
        held_out[leg.receiver_id] += leg.minutes
    other = "receiver_id" if host_side == "giver" else "giver_id"
    order = [(n, getattr(leg, other), f"legs.{n}.{other}") for n, leg in enumerate(data.legs)]
    order.append((0, host, f"legs.0.{host_side}_id"))
    for _, participant, key in order:
        account = accounts[found[participant].account_id]
        crossed = account.crossed(held_in[participant], held_out[participant])
        if crossed is not None:
            where = "below their floor" if crossed == "floor" else "above their ceiling"
            raise LimitExceeded(
                f"participant {participant} would go {where} (pending exchanges count):"
                " nothing was logged",
                participant_id=participant,
                limit=crossed,
                errors=[field_error(key, f"would go {where}")],
            )


async def review_reasons(
    conn: Connection,
    rules: Policy,
    timebank_id: int,
    data: GroupSessionCreate | GroupRecord,
    parties: dict[int, Party],
) -> list[str]:
    """The review rules an 'automatic unless' policy fires for the whole session: its total
    minutes, its date, any organisation among its parties, anyone's first exchange."""
    if rules.approval_mode != "automatic_unless":
        return []
    first_timers: set[int] = set()
    if rules.review_first_exchange:
        first_timers = await repository.first_timers(conn, timebank_id, list(parties))
    minutes = (
        data.minutes if isinstance(data, GroupRecord) else sum(leg.minutes for leg in data.legs)
    )
    return policy.review_reasons(
        rules,
        minutes=minutes,
        service_date=data.service_date,
        party_kinds={party.kind for party in parties.values()},
        first_timers=first_timers,
        today=date.today(),
    )


# ---------------------------------------------------------------------------------------------
# Reading.
# ---------------------------------------------------------------------------------------------


def _visible(
    access: TimebankAccess, group: GroupRecord | None, legs: Sequence[ExchangeRecord]
) -> Sequence[ExchangeRecord]:
    """The session and the legs the caller sees: all of them for coordinators and its host,
    their own for an attendee; anyone else is told it does not exist."""
    if group is None:
        raise NotFound("exchange not found in this timebank")
    if access.can_manage or access.party_id == group.host_id:
        return legs
    mine = [leg for leg in legs if access.party_id in leg.parties]
    if access.party_id is None or not mine:
        raise NotFound("exchange not found in this timebank")
    return mine


def as_group_detail(
    group: GroupRecord, legs: Sequence[ExchangeRecord], shown: Sequence[ExchangeRecord]
) -> GroupSessionDetail:
    """A session's answer: its row, its state and review reason from all its legs, and the
    legs the caller may see (``shown``)."""
    return GroupSessionDetail.model_validate(
        {
            **{name: getattr(group, name) for name in _AS_RECORDED},
            "attendees": group.legs,
            "description": group.description or "",
            "state": policy.group_state([leg.state for leg in legs]),
            "review_reason": next((leg.review_reason for leg in legs if leg.review_reason), None),
            "legs": [LegPublic.model_validate(leg, from_attributes=True) for leg in shown],
        }
    )


# The fields of a session's answer that are its row's as recorded.
_AS_RECORDED = (
    "id",
    "host_id",
    "host_side",
    "minutes",
    "service_date",
    "category",
    "logged_by_user_id",
    "on_behalf",
    "created_at",
)


async def group_detail(
    conn: Connection, access: TimebankAccess, group_id: int
) -> GroupSessionDetail:
    """A session as the caller may see it (NotFound otherwise)."""
    group = await sql.get_group(conn, access.timebank_id, group_id)
    legs = await sql.legs_of(conn, access.timebank_id, group_id) if group is not None else []
    return as_group_detail(group, legs, _visible(access, group, legs))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Deciding.
# ---------------------------------------------------------------------------------------------


async def decide_any(
    conn: Connection, *, access: TimebankAccess, exchange_id: int, action: str, reason: str | None
) -> ExchangeDetail | GroupSessionDetail:
    """Take ``action`` on what ``exchange_id`` names: an exchange, a group session, or a leg
    of one; what it names as it is afterwards."""
    timebank_id = access.timebank_id
    exchange = await repository.get_exchange(conn, timebank_id, exchange_id, lock=True)
    if exchange is not None:
        policy.require_visible(access, exchange)
        return await decisions.decide_locked(conn, access, exchange, action, reason)
    group_id = await sql.group_of(conn, timebank_id, exchange_id)
    if group_id is None:
        raise NotFound("exchange not found in this timebank")
    group = await sql.get_group(conn, timebank_id, group_id, lock=True)
    legs = await sql.legs_of(conn, timebank_id, group_id, lock=True)
    shown = _visible(access, group, legs)
    assert group is not None
    if action in policy.COUNTERPARTY_DECISIONS:
        leg = _callers_leg(access, shown, exchange_id)
        await _decide_leg(conn, access, group, legs, leg, action, reason)
    elif group_id != exchange_id:
        raise InvalidTransition(
            f"exchange {exchange_id} is one leg of group session {group_id}: a session is"
            f" approved, rejected, cancelled or reversed as a whole, at exchange {group_id}",
            group_id=group_id,
        )
    else:
        await _decide_group(conn, access, group, legs, action, reason)
    if group_id == exchange_id:
        return await group_detail(conn, access, group_id)
    return await decisions.detail(conn, timebank_id, exchange_id)


def _callers_leg(
    access: TimebankAccess, shown: Sequence[ExchangeRecord], exchange_id: int
) -> ExchangeRecord:
    """The leg an attendee confirms or disputes: the one named, or, naming the session, their
    own."""
    for leg in shown:
        if leg.id == exchange_id or (
            leg.group_id == exchange_id and access.party_id == policy.counterparty_of(leg)
        ):
            return leg
    if any(leg.group_id == exchange_id for leg in shown):
        raise Forbidden("only an attendee confirms or disputes their own leg of a session")
    raise NotFound("exchange not found in this timebank")


async def _decide_leg(
    conn: Connection,
    access: TimebankAccess,
    group: GroupRecord,
    legs: Sequence[ExchangeRecord],
    leg: ExchangeRecord,
    action: str,
    reason: str | None,
) -> None:
    """An attendee confirms or disputes their leg; once no leg waits for its attendee and none
    is disputed, the session goes where the policy sends it, as a whole."""
    actor = policy.decider(access, leg, action)
    policy.require_from_state(action, leg)
    if action == "dispute":
        await decisions.move(conn, leg, action, actor, reason=reason)
        return
    rules = await repository.get_policy(conn, group.timebank_id)
    found = await sql.parties(
        conn, group.timebank_id, [group.host_id, *(policy.counterparty_of(x) for x in legs)]
    )
    reasons = await review_reasons(conn, rules, group.timebank_id, group, found)
    review = "; ".join(reasons) or None
    moved, _ = await decisions.move(conn, leg, action, actor, reason=reason, review_reason=review)
    now = [moved if other.id == leg.id else other for other in legs]
    if all(other.state == "awaiting_approval" for other in now) and (
        policy.approves_automatically(rules, reasons)
    ):
        await _lock_accounts_of(conn, group, found)
        for other in now:
            await decisions.approve(
                conn, other, POLICY_ACTOR, "auto_approve", decisions.AUTO_APPROVAL_REASON
            )


async def _decide_group(
    conn: Connection,
    access: TimebankAccess,
    group: GroupRecord,
    legs: Sequence[ExchangeRecord],
    action: str,
    reason: str | None,
) -> None:
    """Approve, reject, cancel or reverse every leg, or none (the first refusal ends it)."""
    actors = [
        policy.decider(access, leg, policy.group_leg_action(action, leg.state)) for leg in legs
    ]
    policy.require_group_ready(action, [leg.state for leg in legs])
    steps = []
    for leg, actor in zip(legs, actors, strict=True):
        leg_action = policy.group_leg_action(action, leg.state)
        policy.require_from_state(leg_action, leg)
        steps.append((leg, leg_action, actor))
    if action in ("approve", "reverse"):
        found = await sql.parties(
            conn, group.timebank_id, [group.host_id, *(policy.counterparty_of(x) for x in legs)]
        )
        await _lock_accounts_of(conn, group, found)
    for leg, leg_action, actor in steps:
        await decisions.EFFECTS[leg_action](conn, leg, actor, leg_action, reason)


async def _lock_accounts_of(conn: Connection, group: GroupRecord, found: dict[int, Party]) -> None:
    """Every account of the session, locked in ascending order before any leg moves, so
    sessions that share attendees never deadlock."""
    await ledger.lock_accounts(conn, group.timebank_id, [p.account_id for p in found.values()])


__all__ = ["check", "decide_any", "group_detail", "log_group"]
