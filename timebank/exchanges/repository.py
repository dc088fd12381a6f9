"""SQL of exchange rows and their decisions, the timebank's policy and the parties of an
exchange. Every function takes the caller's connection, so it composes into the caller's
transaction. (The statements that log an exchange are in ``exchanges.log_statements``.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from timebank.db.statements import Connection, fetch, fetch_one
from timebank.exchanges.schemas import (
    Actor,
    DecisionRecord,
    ExchangeFilters,
    ExchangeRecord,
    ExchangeState,
    Party,
    Policy,
)
from timebank.ledger import repository as ledger

__all__ = ["Connection"]

_EXCHANGE_COLUMNS = (
    "e.id, e.timebank_id, e.giver_id, e.receiver_id, e.minutes, e.service_date,"
    " c.slug AS category, e.description, e.state, e.logged_by_user_id, e.logged_for,"
    " e.on_behalf, e.review_reason, e.pending_transfer_id, e.transfer_id,"
    " e.reversal_transfer_id, e.created_at, e.updated_at"
)
_EXCHANGE_FROM = " FROM exchanges e JOIN categories c ON c.id = e.category_id"

POLICY_COLUMNS = (
    "confirmation_required",
    "approval_mode",
    "review_above_minutes",
    "review_backdated_days",
    "review_organisation",
    "review_first_exchange",
    "max_exchange_minutes",
)

# Whether a participant takes part in exchanges, as ``TimebankAccess.party_id`` decides for a
# caller: no user (organisations, people who never sign in), or a user who is a site admin or
# a member or coordinator here (not a funder only, nor role-less). tests/exchanges/
# test_one_rule.py holds the two to the same answers.
TAKES_PART = (
    "(p.user_id IS NULL"
    " OR EXISTS (SELECT 1 FROM users pu WHERE pu.id = p.user_id AND pu.is_admin)"
    " OR EXISTS (SELECT 1 FROM timebank_roles r"
    "  WHERE r.user_id = p.user_id AND r.timebank_id = p.timebank_id"
    "    AND r.role IN ('member', 'coordinator')))"
)

# Exchange and decision rows as an INSERT or UPDATE writes them, selected side by side (the
# decision's columns prefixed ``d_``); the category slug is given by the caller.
_EXCHANGE_FIELDS = [f.name for f in fields(ExchangeRecord)]
_DECISION_FIELDS = [f.name for f in fields(DecisionRecord)]
RETURNED_EXCHANGE = ", ".join(name for name in _EXCHANGE_FIELDS if name != "category")
RETURNED_DECISION = ", ".join(_DECISION_FIELDS)
SELECTED_DECISION = ", ".join(f"decided.{name} AS d_{name}" for name in _DECISION_FIELDS)


def selected_exchange(category: str) -> str:
    """The exchange columns of CTE ``logged``, its category slug given as ``category``."""
    return ", ".join(
        f"CAST({category} AS text) AS category" if name == "category" else f"logged.{name}"
        for name in _EXCHANGE_FIELDS
    )


def written(row: Mapping[str, Any]) -> tuple[ExchangeRecord, DecisionRecord]:
    """The exchange and the decision of a row of ``selected_exchange`` and
    ``SELECTED_DECISION``."""
    return (
        ExchangeRecord(**{name: row[name] for name in _EXCHANGE_FIELDS}),
        DecisionRecord(**{name: row[f"d_{name}"] for name in _DECISION_FIELDS}),
    )


# ---------------------------------------------------------------------------------------------
# What an exchange is checked against.
# ---------------------------------------------------------------------------------------------

_POLICY = f"SELECT {', '.join(POLICY_COLUMNS)} FROM timebanks WHERE id = $1"
_PARTY = (
    f"SELECT p.id, p.kind, a.id AS account_id, {TAKES_PART} AS takes_part"
    " FROM participants p"
    " JOIN accounts a ON a.participant_id = p.id AND a.timebank_id = p.timebank_id"
    " WHERE p.id = $1 AND p.timebank_id = $2"
)
_FIRST_TIMERS = (
    "SELECT p.id FROM unnest(CAST($1 AS bigint[])) AS p(id)"
    " WHERE NOT EXISTS (SELECT 1 FROM exchanges e"
    "   WHERE e.timebank_id = $2 AND e.state = 'approved'"
    "     AND (e.giver_id = p.id OR e.receiver_id = p.id))"
)


async def get_policy(conn: Connection, timebank_id: int) -> Policy:
    row = await fetch_one(conn, _POLICY, timebank_id)
    assert row is not None, "the caller's access names an existing timebank"
    return Policy(**row)


async def get_party(conn: Connection, timebank_id: int, participant_id: int) -> Party | None:
    row = await fetch_one(conn, _PARTY, participant_id, timebank_id)
    return Party(**row) if row is not None else None


async def first_timers(
    conn: Connection, timebank_id: int, participant_ids: Sequence[int]
) -> set[int]:
    """Those of ``participant_ids`` with no approved exchange yet."""
    rows = await fetch(conn, _FIRST_TIMERS, list(participant_ids), timebank_id)
    return {row["id"] for row in rows}


# ---------------------------------------------------------------------------------------------
# Exchanges and their decisions.
# ---------------------------------------------------------------------------------------------

_EXCHANGE = f"SELECT {_EXCHANGE_COLUMNS}{_EXCHANGE_FROM} WHERE e.id = $1 AND e.timebank_id = $2"
_EXCHANGE_LOCKED = _EXCHANGE + " FOR UPDATE OF e"


async def get_exchange(
    conn: Connection, timebank_id: int, exchange_id: int, *, lock: bool = False
) -> ExchangeRecord | None:
    """One exchange of this timebank; with ``lock``, its row stays locked (FOR UPDATE) until
    the transaction ends, so decisions on one exchange take turns."""
    row = await fetch_one(conn, _EXCHANGE_LOCKED if lock else _EXCHANGE, exchange_id, timebank_id)
    return ExchangeRecord(**row) if row is not None else None


def _move_statement(transfer_id: str) -> str:
    """Move an exchange ($1 of timebank $2) from state $3 to $4 and record decision $5 by
    ($6, $7, $8) with reason $9; set review reason $10, the transfer ``transfer_id`` (an
    expression of $11) and the reversal $12; the category slug is $13."""
    return (
        "WITH logged AS ("
        "  UPDATE exchanges SET state = $4, updated_at = now(),"
        "    review_reason = coalesce(CAST($10 AS text), review_reason),"
        f"    transfer_id = coalesce({transfer_id}, transfer_id),"
        "    reversal_transfer_id = coalesce(CAST($12 AS bigint), reversal_transfer_id)"
        "  WHERE id = $1 AND timebank_id = $2 AND state = $3"
        f"  RETURNING {RETURNED_EXCHANGE}),"
        " decided AS ("
        "  INSERT INTO exchange_decisions (timebank_id, exchange_id, action, from_state,"
        "   to_state, actor_user_id, actor_role, on_behalf_of, reason)"
        "  SELECT timebank_id, id, CAST($5 AS text), CAST($3 AS text), CAST($4 AS text),"
        "   CAST($6 AS bigint), CAST($7 AS text), CAST($8 AS bigint), CAST($9 AS text)"
        f"   FROM logged RETURNING {RETURNED_DECISION})"
        f" SELECT {selected_exchange('$13')}, {SELECTED_DECISION} FROM logged, decided"
    )


_MOVE = _move_statement("CAST($11 AS bigint)")
# The same, posting the exchange's reservation ($11) once the exchange is found in its state.
_MOVE_POSTING = _move_statement(ledger.post_pending_id("$2", "$11"))


async def move_exchange(
    conn: Connection,
    exchange: ExchangeRecord,
    *,
    action: str,
    to_state: ExchangeState,
    actor: Actor,
    reason: str | None = None,
    review_reason: str | None = None,
    transfer_id: int | None = None,
    reversal_transfer_id: int | None = None,
    post_pending: bool = False,
) -> tuple[ExchangeRecord, DecisionRecord] | None:
    """Move an exchange from the state it was read in to ``to_state`` and record the decision,
    in one statement; return both rows as written. None (nothing written) if it was no longer
    in that state. With ``post_pending``, the same statement posts the exchange's reservation
    and records the transfer."""
    row = await fetch_one(
        conn,
        _MOVE_POSTING if post_pending else _MOVE,
        exchange.id,
        exchange.timebank_id,
        exchange.state,
        to_state,
        action,
        actor.user_id,
        actor.role,
        actor.on_behalf_of,
        reason,
        review_reason,
        exchange.pending_transfer_id if post_pending else transfer_id,
        reversal_transfer_id,
        exchange.category,
    )
    return written(row) if row is not None else None


_DECISIONS = (
    "SELECT id, action, from_state, to_state, actor_user_id, actor_role, on_behalf_of,"
    " reason, decided_at FROM exchange_decisions"
    " WHERE exchange_id = $1 AND timebank_id = $2 ORDER BY id"
)


async def decisions_of(
    conn: Connection, timebank_id: int, exchange_id: int
) -> list[DecisionRecord]:
    rows = await fetch(conn, _DECISIONS, exchange_id, timebank_id)
    return [DecisionRecord(**row) for row in rows]


_LIST = (
    f"SELECT {_EXCHANGE_COLUMNS}{_EXCHANGE_FROM}"
    " WHERE e.timebank_id = $1"
    "   AND (CAST($2 AS bigint) IS NULL OR e.id > $2)"
    "   AND (CAST($3 AS text) IS NULL OR e.state = $3)"
    "   AND (CAST($4 AS bigint) IS NULL OR e.giver_id = $4 OR e.receiver_id = $4)"
    "   AND (CAST($5 AS bigint) IS NULL OR e.giver_id = $5 OR e.receiver_id = $5)"
    "   AND (CAST($6 AS date) IS NULL OR e.service_date >= $6)"
    "   AND (CAST($7 AS date) IS NULL OR e.service_date <= $7)"
    " ORDER BY e.id LIMIT $8"
)


async def list_exchanges(
    conn: Connection,
    timebank_id: int,
    filters: ExchangeFilters,
    *,
    party_of: int | None,
    limit: int,
) -> list[ExchangeRecord]:
    """Exchanges in ascending id order after ``filters.after_id``; ``party_of`` keeps only
    those a participant is party to."""
    rows = await fetch(
        conn,
        _LIST,
        timebank_id,
        filters.after_id,
        filters.state,
        party_of,
        filters.participant_id,
        filters.date_from,
        filters.date_to,
        limit,
    )
    return [ExchangeRecord(**row) for row in rows]
