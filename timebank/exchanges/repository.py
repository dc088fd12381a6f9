"""All SQL of exchanges: the timebank's policy, parties and categories, exchange rows and their
decisions, idempotency keys, and the reads behind balances and statements. Every function takes
the caller's connection, so it composes into the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.exchanges.schemas import (
    Actor,
    DecisionRecord,
    ExchangeFilters,
    ExchangeRecord,
    ExchangeState,
    Party,
    Policy,
    Side,
)

_EXCHANGE_COLUMNS = (
    "e.id, e.timebank_id, e.giver_id, e.receiver_id, e.minutes, e.service_date,"
    " c.slug AS category, e.description, e.state, e.logged_by_user_id, e.logged_for,"
    " e.on_behalf, e.review_reason, e.pending_transfer_id, e.transfer_id,"
    " e.reversal_transfer_id, e.created_at, e.updated_at"
)
_EXCHANGE_FROM = " FROM exchanges e JOIN categories c ON c.id = e.category_id"


async def _one(conn: AsyncConnection, sql: str, **params: Any) -> Mapping[str, Any] | None:
    row = (await conn.execute(text(sql), params)).mappings().one_or_none()
    return dict(row) if row is not None else None


def _exchange(row: Mapping[str, Any]) -> ExchangeRecord:
    return ExchangeRecord(**row)


# ---------------------------------------------------------------------------------------------
# What an exchange is checked against.
# ---------------------------------------------------------------------------------------------


async def get_policy(conn: AsyncConnection, timebank_id: int) -> Policy:
    row = await _one(
        conn,
        "SELECT confirmation_required, approval_mode, review_above_minutes,"
        " review_backdated_days, review_organisation, review_first_exchange,"
        " max_exchange_minutes FROM timebanks WHERE id = :timebank_id",
        timebank_id=timebank_id,
    )
    assert row is not None, "the caller's access names an existing timebank"
    return Policy(**row)


async def get_party(conn: AsyncConnection, timebank_id: int, participant_id: int) -> Party | None:
    row = await _one(
        conn,
        "SELECT p.id, p.kind, a.id AS account_id FROM participants p"
        " JOIN accounts a ON a.participant_id = p.id AND a.timebank_id = p.timebank_id"
        " WHERE p.id = :participant_id AND p.timebank_id = :timebank_id",
        participant_id=participant_id,
        timebank_id=timebank_id,
    )
    return Party(**row) if row is not None else None


async def get_category(
    conn: AsyncConnection, timebank_id: int, slug: str
) -> tuple[int, str] | None:
    row = await _one(
        conn,
        "SELECT id, name FROM categories WHERE timebank_id = :timebank_id AND slug = :slug",
        timebank_id=timebank_id,
        slug=slug,
    )
    return (row["id"], row["name"]) if row is not None else None


async def first_timers(
    conn: AsyncConnection, timebank_id: int, participant_ids: Sequence[int]
) -> set[int]:
    """Those of ``participant_ids`` with no approved exchange yet."""
    rows = await conn.execute(
        text(
            "SELECT p.id FROM unnest(CAST(:ids AS bigint[])) AS p(id)"
            " WHERE NOT EXISTS (SELECT 1 FROM exchanges e"
            "   WHERE e.timebank_id = :timebank_id AND e.state = 'approved'"
            "     AND (e.giver_id = p.id OR e.receiver_id = p.id))"
        ),
        {"ids": list(participant_ids), "timebank_id": timebank_id},
    )
    return set(rows.scalars())


# ---------------------------------------------------------------------------------------------
# Exchanges and their decisions.
# ---------------------------------------------------------------------------------------------


async def insert_exchange(
    conn: AsyncConnection,
    *,
    timebank_id: int,
    giver_id: int,
    receiver_id: int,
    minutes: int,
    service_date: date,
    category_id: int,
    description: str,
    state: ExchangeState,
    logged_by_user_id: int,
    logged_for: Side,
    on_behalf: bool,
    review_reason: str | None,
    pending_transfer_id: int,
    actor: Actor,
) -> int:
    """Insert an exchange and its 'log' decision in one statement; return its id."""
    row = await _one(
        conn,
        "WITH logged AS ("
        "  INSERT INTO exchanges (timebank_id, giver_id, receiver_id, minutes, service_date,"
        "    category_id, description, state, logged_by_user_id, logged_for, on_behalf,"
        "    review_reason, pending_transfer_id)"
        "  VALUES (:timebank_id, :giver_id, :receiver_id, :minutes, :service_date, :category_id,"
        "    :description, :state, :logged_by_user_id, :logged_for, :on_behalf, :review_reason,"
        "    :pending_transfer_id)"
        "  RETURNING id, timebank_id, state)"
        " INSERT INTO exchange_decisions (timebank_id, exchange_id, action, from_state, to_state,"
        "   actor_user_id, actor_role, on_behalf_of)"
        " SELECT timebank_id, id, 'log', NULL, state, CAST(:actor_user_id AS bigint),"
        "   CAST(:actor_role AS text), CAST(:on_behalf_of AS bigint)"
        "   FROM logged RETURNING exchange_id",
        timebank_id=timebank_id,
        giver_id=giver_id,
        receiver_id=receiver_id,
        minutes=minutes,
        service_date=service_date,
        category_id=category_id,
        description=description,
        state=state,
        logged_by_user_id=logged_by_user_id,
        logged_for=logged_for,
        on_behalf=on_behalf,
        review_reason=review_reason,
        pending_transfer_id=pending_transfer_id,
        actor_user_id=actor.user_id,
        actor_role=actor.role,
        on_behalf_of=actor.on_behalf_of,
    )
    assert row is not None
    return int(row["exchange_id"])


async def get_exchange(
    conn: AsyncConnection, timebank_id: int, exchange_id: int, *, lock: bool = False
) -> ExchangeRecord | None:
    """One exchange of this timebank; with ``lock``, its row stays locked (FOR UPDATE) until
    the transaction ends, so decisions on one exchange take turns."""
    row = await _one(
        conn,
        f"SELECT {_EXCHANGE_COLUMNS}{_EXCHANGE_FROM}"
        " WHERE e.id = :id AND e.timebank_id = :timebank_id" + (" FOR UPDATE OF e" if lock else ""),
        id=exchange_id,
        timebank_id=timebank_id,
    )
    return _exchange(row) if row is not None else None


async def move_exchange(
    conn: AsyncConnection,
    exchange: ExchangeRecord,
    *,
    action: str,
    to_state: ExchangeState,
    actor: Actor,
    reason: str | None = None,
    review_reason: str | None = None,
    transfer_id: int | None = None,
    reversal_transfer_id: int | None = None,
) -> bool:
    """Move an exchange from the state it was read in to ``to_state`` and record the decision,
    in one statement. False (nothing written) if it was no longer in that state."""
    row = await _one(
        conn,
        "WITH moved AS ("
        "  UPDATE exchanges SET state = :to_state, updated_at = now(),"
        "    review_reason = coalesce(CAST(:review_reason AS text), review_reason),"
        "    transfer_id = coalesce(CAST(:transfer_id AS bigint), transfer_id),"
        "    reversal_transfer_id = coalesce(CAST(:reversal_transfer_id AS bigint),"
        "                                    reversal_transfer_id)"
        "  WHERE id = :id AND timebank_id = :timebank_id AND state = :from_state"
        "  RETURNING id, timebank_id)"
        " INSERT INTO exchange_decisions (timebank_id, exchange_id, action, from_state, to_state,"
        "   actor_user_id, actor_role, on_behalf_of, reason)"
        " SELECT timebank_id, id, CAST(:action AS text), CAST(:from_state AS text),"
        "   CAST(:to_state AS text), CAST(:actor_user_id AS bigint), CAST(:actor_role AS text),"
        "   CAST(:on_behalf_of AS bigint), CAST(:reason AS text) FROM moved RETURNING id",
        id=exchange.id,
        timebank_id=exchange.timebank_id,
        from_state=exchange.state,
        to_state=to_state,
        action=action,
        actor_user_id=actor.user_id,
        actor_role=actor.role,
        on_behalf_of=actor.on_behalf_of,
        reason=reason,
        review_reason=review_reason,
        transfer_id=transfer_id,
        reversal_transfer_id=reversal_transfer_id,
    )
    return row is not None


async def decisions_of(
    conn: AsyncConnection, timebank_id: int, exchange_id: int
) -> list[DecisionRecord]:
    rows = await conn.execute(
        text(
            "SELECT id, action, from_state, to_state, actor_user_id, actor_role, on_behalf_of,"
            " reason, decided_at FROM exchange_decisions"
            " WHERE exchange_id = :exchange_id AND timebank_id = :timebank_id ORDER BY id"
        ),
        {"exchange_id": exchange_id, "timebank_id": timebank_id},
    )
    return [DecisionRecord(**row) for row in rows.mappings()]


async def list_exchanges(
    conn: AsyncConnection,
    timebank_id: int,
    filters: ExchangeFilters,
    *,
    party_of: int | None,
    limit: int,
) -> list[ExchangeRecord]:
    """Exchanges in ascending id order after ``filters.after_id``; ``party_of`` keeps only
    those a participant is party to."""
    rows = await conn.execute(
        text(
            f"SELECT {_EXCHANGE_COLUMNS}{_EXCHANGE_FROM}"
            " WHERE e.timebank_id = :timebank_id"
            "   AND (CAST(:after_id AS bigint) IS NULL OR e.id > :after_id)"
            "   AND (CAST(:state AS text) IS NULL OR e.state = :state)"
            "   AND (CAST(:party_of AS bigint) IS NULL"
            "        OR e.giver_id = :party_of OR e.receiver_id = :party_of)"
            "   AND (CAST(:participant_id AS bigint) IS NULL"
            "        OR e.giver_id = :participant_id OR e.receiver_id = :participant_id)"
            "   AND (CAST(:date_from AS date) IS NULL OR e.service_date >= :date_from)"
            "   AND (CAST(:date_to AS date) IS NULL OR e.service_date <= :date_to)"
            " ORDER BY e.id LIMIT :limit"
        ),
        {
            "timebank_id": timebank_id,
            "after_id": filters.after_id,
            "state": filters.state,
            "party_of": party_of,
            "participant_id": filters.participant_id,
            "date_from": filters.date_from,
            "date_to": filters.date_to,
            "limit": limit,
        },
    )
    return [_exchange(dict(row)) for row in rows.mappings()]


# ---------------------------------------------------------------------------------------------
# Idempotency keys (I8), claimed and answered inside the caller's transaction.
# ---------------------------------------------------------------------------------------------
