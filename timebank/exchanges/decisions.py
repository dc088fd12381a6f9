"""The decisions on a logged exchange, each a step in the caller's transaction: who may take it
was checked by the policy; here the exchange moves, the ledger moves with it (through its
door), and the decision is recorded with the new state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import fields, replace
from datetime import date
from typing import Any

from timebank.auth.schemas import TimebankAccess
from timebank.db.statements import Connection
from timebank.errors import InvalidTransition, NotFound
from timebank.exchanges import policy, repository
from timebank.exchanges.schemas import (
    POLICY_ACTOR,
    Actor,
    DecisionRecord,
    ExchangeDetail,
    ExchangeRecord,
    Party,
    Policy,
)
from timebank.ledger import repository as ledger

AUTO_APPROVAL_REASON = "approved automatically under the timebank's policy"


async def decide_on(
    conn: Connection,
    *,
    access: TimebankAccess,
    exchange_id: int,
    action: str,
    reason: str | None,
) -> ExchangeDetail:
    """Take ``action`` on an exchange (not a leg of a group session), its row locked first so
    decisions on it take turns; the exchange as it is afterwards."""
    timebank_id = access.timebank_id
    exchange = policy.require_visible(
        access, await repository.get_exchange(conn, timebank_id, exchange_id, lock=True)
    )
    return await decide_locked(conn, access, exchange, action, reason)


async def decide_locked(
    conn: Connection,
    access: TimebankAccess,
    exchange: ExchangeRecord,
    action: str,
    reason: str | None,
) -> ExchangeDetail:
    """Take ``action`` on an exchange the caller may see, its row locked; the exchange as it is
    afterwards."""
    actor = policy.decider(access, exchange, action)
    policy.require_from_state(action, exchange)
    await EFFECTS[action](conn, exchange, actor, action, reason)
    return await detail(conn, exchange.timebank_id, exchange.id)


async def review_reasons(
    conn: Connection,
    rules: Policy,
    timebank_id: int,
    giver: Party,
    receiver: Party,
    minutes: int,
    service_date: date,
) -> list[str]:
    """The review rules an 'automatic unless' policy fires for this exchange (none for other
    policies: a coordinator reviews everything, or nothing is reviewed)."""
    if rules.approval_mode != "automatic_unless":
        return []
    first_timers: set[int] = set()
    if rules.review_first_exchange:
        first_timers = await repository.first_timers(conn, timebank_id, [giver.id, receiver.id])
    return policy.review_reasons(
        rules,
        minutes=minutes,
        service_date=service_date,
        party_kinds=(giver.kind, receiver.kind),
        first_timers=first_timers,
        today=date.today(),
    )


async def move(
    conn: Connection, exchange: ExchangeRecord, action: str, actor: Actor, **changes: Any
) -> tuple[ExchangeRecord, DecisionRecord]:
    """The exchange and the decision as written."""
    to_state = "approved" if action == "auto_approve" else policy.TRANSITIONS[action].to_state
    moved = await repository.move_exchange(
        conn, exchange, action=action, to_state=to_state, actor=actor, **changes
    )
    if moved is None:  # the row is locked, so only a bug gets here; refuse rather than guess
        raise InvalidTransition(f"exchange {exchange.id} changed while it was being decided")
    return moved


async def approve(
    conn: Connection, exchange: ExchangeRecord, actor: Actor, action: str, reason: str | None
) -> None:
    assert exchange.pending_transfer_id is not None
    # The reservation is posted by the statement that moves the exchange: one round trip.
    await move(conn, exchange, action, actor, reason=reason, post_pending=True)


async def _release(
    conn: Connection, exchange: ExchangeRecord, actor: Actor, action: str, reason: str | None
) -> None:
    assert exchange.pending_transfer_id is not None
    await ledger.void_pending(conn, exchange.timebank_id, exchange.pending_transfer_id)
    await move(conn, exchange, action, actor, reason=reason)


async def _confirm(
    conn: Connection, exchange: ExchangeRecord, actor: Actor, action: str, reason: str | None
) -> None:
    rules = await repository.get_policy(conn, exchange.timebank_id)
    giver = await repository.get_party(conn, exchange.timebank_id, exchange.giver_id)
    receiver = await repository.get_party(conn, exchange.timebank_id, exchange.receiver_id)
    assert giver is not None and receiver is not None
    reasons = await review_reasons(
        conn, rules, exchange.timebank_id, giver, receiver, exchange.minutes, exchange.service_date
    )
    await move(
        conn, exchange, action, actor, reason=reason, review_reason="; ".join(reasons) or None
    )
    if policy.approves_automatically(rules, reasons):
        awaiting = replace(exchange, state="awaiting_approval")
        await approve(conn, awaiting, POLICY_ACTOR, "auto_approve", AUTO_APPROVAL_REASON)


async def _reverse(
    conn: Connection, exchange: ExchangeRecord, actor: Actor, action: str, reason: str | None
) -> None:
    assert exchange.transfer_id is not None and reason is not None
    reversal = await ledger.reverse(conn, exchange.timebank_id, exchange.transfer_id, reason)
    await move(
        conn, exchange, action, actor, reason=reason, reversal_transfer_id=reversal.transfer.id
    )


async def _move_only(
    conn: Connection, exchange: ExchangeRecord, actor: Actor, action: str, reason: str | None
) -> None:
    await move(conn, exchange, action, actor, reason=reason)


# What each decision does, given (connection, exchange, actor, action, reason).
EFFECTS: dict[
    str, Callable[[Connection, ExchangeRecord, Actor, str, str | None], Awaitable[None]]
] = {
    "confirm": _confirm,
    "dispute": _move_only,
    "approve": approve,
    "reject": _release,
    "cancel": _release,
    "reverse": _reverse,
}


async def detail(conn: Connection, timebank_id: int, exchange_id: int) -> ExchangeDetail:
    """The exchange with its decisions, as read now (NotFound if it is not in the timebank)."""
    exchange = await repository.get_exchange(conn, timebank_id, exchange_id)
    if exchange is None:
        raise NotFound(f"exchange {exchange_id} not found in this timebank")
    return as_detail(exchange, await repository.decisions_of(conn, timebank_id, exchange_id))


def as_detail(exchange: ExchangeRecord, decisions: Sequence[DecisionRecord]) -> ExchangeDetail:
    return ExchangeDetail.model_validate(
        {**record_fields(exchange), "decisions": [record_fields(d) for d in decisions]}
    )


def record_fields(record: ExchangeRecord | DecisionRecord) -> dict[str, Any]:
    """A record's fields as they are (``asdict`` deep-copies every value on the way)."""
    return {f.name: getattr(record, f.name) for f in fields(record)}
