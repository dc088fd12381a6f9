"""All SQL of exchanges: the timebank's policy, parties and categories, exchange rows and their
decisions, idempotency keys, and the reads behind balances and statements. Every function takes
the caller's connection, so it composes into the caller's transaction."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, TypeAlias

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.auth import repository as auth_repository
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
from timebank.ledger import repository as ledger_repository

_EXCHANGE_COLUMNS = (
    "e.id, e.timebank_id, e.giver_id, e.receiver_id, e.minutes, e.service_date,"
    " c.slug AS category, e.description, e.state, e.logged_by_user_id, e.logged_for,"
    " e.on_behalf, e.review_reason, e.pending_transfer_id, e.transfer_id,"
    " e.reversal_transfer_id, e.created_at, e.updated_at"
)
_EXCHANGE_FROM = " FROM exchanges e JOIN categories c ON c.id = e.category_id"


# Either connection the service has: SQLAlchemy's (reads, tests) or the plain asyncpg one under
# it (the transactions of ``Exchanges``, which skip SQLAlchemy's work per statement).
Connection: TypeAlias = AsyncConnection | asyncpg.Connection

_NAMED_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=256)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with its ``:name`` parameters numbered for asyncpg (``$1``…, one number per
    name), and the names in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _NAMED_PARAMETER.sub(number, sql), tuple(names)


async def _all(conn: Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    if isinstance(conn, AsyncConnection):
        return [dict(row) for row in (await conn.execute(text(sql), params)).mappings()]
    numbered, names = _numbered(sql)
    return [dict(row) for row in await conn.fetch(numbered, *(params[name] for name in names))]


async def _one(conn: Connection, sql: str, **params: Any) -> dict[str, Any] | None:
    rows = await _all(conn, sql, **params)
    if len(rows) > 1:
        raise AssertionError("at most one row expected")
    return rows[0] if rows else None


def _exchange(row: Mapping[str, Any]) -> ExchangeRecord:
    return ExchangeRecord(**row)


# ---------------------------------------------------------------------------------------------
# What an exchange is checked against.
# ---------------------------------------------------------------------------------------------


async def get_policy(conn: Connection, timebank_id: int) -> Policy:
    row = await _one(
        conn,
        "SELECT confirmation_required, approval_mode, review_above_minutes,"
        " review_backdated_days, review_organisation, review_first_exchange,"
        " max_exchange_minutes FROM timebanks WHERE id = :timebank_id",
        timebank_id=timebank_id,
    )
    assert row is not None, "the caller's access names an existing timebank"
    return Policy(**row)


async def log_context(
    conn: Connection,
    *,
    timebank_id: int,
    giver_id: int,
    receiver_id: int,
    category: str,
    author: str,
    idempotency_key: str | None,
    fingerprint: bytes,
) -> LogContext:
    """All that logging an exchange reads, in one statement, outside any transaction: the
    stored answer of the idempotency key when this very request was already answered (a
    different request under the key is refused: IdempotencyMismatch), the timebank's policy,
    both parties and the category (None for those not in the timebank). The key is written by
    the statement that logs the exchange (``insert_exchange``, ``insert_approved_exchange``)."""
    row = await _one(
        conn,
        f"SELECT {_log_context_columns('t', ':author', 'true')}"
        " FROM timebanks t WHERE t.id = :timebank_id",
        timebank_id=timebank_id,
        giver_id=giver_id,
        receiver_id=receiver_id,
        category=category,
        author=author,
        key=idempotency_key,
        hash=fingerprint,
    )
    assert row is not None, "the caller's access names an existing timebank"
    return log_context_of(row)


async def caller_and_log_context(
    conn: Connection,
    *,
    token_hash: bytes,
    slug: str,
    giver_id: int,
    receiver_id: int,
    category: str,
    idempotency_key: str | None,
    fingerprint: bytes,
) -> dict[str, Any] | None:
    """Who the caller is and what they are in timebank ``slug`` (the columns of
    ``principal_in_timebank``, None for no live token) and, beside them, what ``log_context``
    reads, for the caller as author: one round trip for both. ``log_context_of`` reads the
    context from the row; it is there only when the caller has a part in the timebank (the
    stored answer of a key is looked up only then)."""
    return await _one(
        conn,
        f"SELECT {auth_repository.PRINCIPAL_COLUMNS},"
        f" {_log_context_columns('b', _CALLER_AUTHOR, _CALLER_HAS_PART)}"
        f" {auth_repository.principal_from(':token_hash', ':slug')}",
        token_hash=token_hash,
        slug=slug,
        giver_id=giver_id,
        receiver_id=receiver_id,
        category=category,
        key=idempotency_key,
        hash=fingerprint,
    )


# The author of the caller's idempotency keys (``Exchanges.log``'s ``author``), and whether they
# have a part in the timebank (as ``access_from_row`` decides), in ``caller_and_log_context``.
_CALLER_AUTHOR = "('user:' || u.id)"
_CALLER_HAS_PART = (
    "(u.is_admin OR EXISTS (SELECT 1 FROM timebank_roles r"
    " WHERE r.user_id = u.id AND r.timebank_id = b.id))"
)


def _log_context_columns(timebank: str, author: str, key_readable: str) -> str:
    """What ``log_context`` selects, for the timebank row aliased ``timebank``, keys written by
    ``author``, their stored answers read only where ``key_readable`` holds."""
    return (
        "(SELECT ledger_answered_key(k.key, k.request_hash, k.result, :hash)"
        f"   FROM idempotency_keys k WHERE {key_readable} AND k.timebank_id = {timebank}.id"
        f"    AND k.author = {author} AND k.key = CAST(:key AS text)) AS answered,"
        f" {', '.join(f'{timebank}.{name}' for name in _POLICY_COLUMNS)},"
        f" ({_PARTY_SQL.format(id=':giver_id', timebank=timebank)}) AS giver,"
        f" ({_PARTY_SQL.format(id=':receiver_id', timebank=timebank)}) AS receiver,"
        " (SELECT ROW(c.id, c.name) FROM categories c"
        f"   WHERE c.timebank_id = {timebank}.id AND c.slug = :category) AS category"
    )


LogContext: TypeAlias = tuple[
    Mapping[str, Any] | None, Policy, Party | None, Party | None, tuple[int, str] | None
]


def log_context_of(row: Mapping[str, Any]) -> LogContext:
    """The stored answer of the key (None when none), the policy, both parties and the
    category, from a row with ``log_context``'s columns."""
    answered = row["answered"]
    return (
        ledger_repository.stored_result(answered) if answered is not None else None,
        Policy(**{name: row[name] for name in _POLICY_COLUMNS}),
        _party(row["giver"]),
        _party(row["receiver"]),
        (row["category"][0], row["category"][1]) if row["category"] is not None else None,
    )


_POLICY_COLUMNS = (
    "confirmation_required",
    "approval_mode",
    "review_above_minutes",
    "review_backdated_days",
    "review_organisation",
    "review_first_exchange",
    "max_exchange_minutes",
)
# Whether a participant can take part in exchanges: no user (organisations, people who never
# sign in), or a user who is a member or coordinator here (not a funder only, nor role-less).
_TAKES_PART = (
    "(p.user_id IS NULL OR EXISTS (SELECT 1 FROM timebank_roles r"
    "  WHERE r.user_id = p.user_id AND r.timebank_id = p.timebank_id"
    "    AND r.role IN ('member', 'coordinator')))"
)
_PARTY_SQL = (
    f"SELECT ROW(p.id, p.kind, a.id, {_TAKES_PART}) FROM participants p"
    " JOIN accounts a ON a.participant_id = p.id AND a.timebank_id = p.timebank_id"
    " WHERE p.id = {id} AND p.timebank_id = {timebank}.id"
)


def _party(row: Any) -> Party | None:
    if row is None:
        return None
    return Party(id=row[0], kind=row[1], account_id=row[2], takes_part=row[3])


async def get_party(conn: Connection, timebank_id: int, participant_id: int) -> Party | None:
    row = await _one(
        conn,
        f"SELECT p.id, p.kind, a.id AS account_id, {_TAKES_PART} AS takes_part"
        " FROM participants p"
        " JOIN accounts a ON a.participant_id = p.id AND a.timebank_id = p.timebank_id"
        " WHERE p.id = :participant_id AND p.timebank_id = :timebank_id",
        participant_id=participant_id,
        timebank_id=timebank_id,
    )
    return Party(**row) if row is not None else None


async def first_timers(
    conn: Connection, timebank_id: int, participant_ids: Sequence[int]
) -> set[int]:
    """Those of ``participant_ids`` with no approved exchange yet."""
    rows = await _all(
        conn,
        "SELECT p.id FROM unnest(CAST(:ids AS bigint[])) AS p(id)"
        " WHERE NOT EXISTS (SELECT 1 FROM exchanges e"
        "   WHERE e.timebank_id = :timebank_id AND e.state = 'approved'"
        "     AND (e.giver_id = p.id OR e.receiver_id = p.id))",
        ids=list(participant_ids),
        timebank_id=timebank_id,
    )
    return {row["id"] for row in rows}


# ---------------------------------------------------------------------------------------------
# Exchanges and their decisions.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyAnswer:
    """An idempotency key (for the request of this ``fingerprint``) that the statement
    logging an exchange writes, answered with the exchange."""

    author: str
    key: str
    fingerprint: bytes


@dataclass(frozen=True)
class NewExchange:
    """An exchange to log (of category ``category_id``, whose slug is ``category``): what
    the statement that logs it writes, whichever way the policy sends it. Its minutes go from
    the debit account, the receiver's, to the credit account, the giver's."""

    timebank_id: int
    giver_id: int
    receiver_id: int
    minutes: int
    service_date: date
    category_id: int
    category: str
    description: str
    logged_by_user_id: int
    logged_for: Side
    on_behalf: bool
    debit_account_id: int
    credit_account_id: int
    memo: str
    actor: Actor
    answer: KeyAnswer | None


def _new_exchange_params(new: NewExchange) -> dict[str, Any]:
    params = {f.name: getattr(new, f.name) for f in fields(new)}
    actor, answer = params.pop("actor"), params.pop("answer")
    return {
        **params,
        "actor_user_id": actor.user_id,
        "actor_role": actor.role,
        "on_behalf_of": actor.on_behalf_of,
        "key_author": answer.author if answer else None,
        "key": answer.key if answer else None,
        "key_hash": answer.fingerprint if answer else None,
    }


# The pieces of the statement that logs an exchange. It writes the idempotency key once,
# already answered with the exchange. The request's read found the key unused; if another
# request under it got there meanwhile, the key's primary key refuses this statement (after
# waiting for the other to commit or roll back) and it writes nothing: see ``_unless_keyed``.
_KEY_PKEY = "idempotency_keys_pkey"
_LOGGED_COLUMNS = (
    "INSERT INTO exchanges (timebank_id, giver_id, receiver_id, minutes, service_date,"
    " category_id, description, logged_by_user_id, logged_for, on_behalf, state,"
)
_LOGGED_VALUES = (
    "SELECT :timebank_id, :giver_id, :receiver_id, :minutes, :service_date, :category_id,"
    " :description, :logged_by_user_id, :logged_for, :on_behalf,"
)


def _logging_statement(ledger_cte: str, logged_cte: str, decided_cte: str) -> str:
    return (
        f"WITH {ledger_cte}, logged AS ({logged_cte}"
        f"  RETURNING {_RETURNED_EXCHANGE}), decided AS ({decided_cte}"
        f"  RETURNING {_RETURNED_DECISION}),"
        " answered AS (INSERT INTO idempotency_keys (timebank_id, author, key, request_hash,"
        "  result) SELECT logged.timebank_id, CAST(:key_author AS text), CAST(:key AS text),"
        "  CAST(:key_hash AS bytea), jsonb_build_object('exchange_id', logged.id) FROM logged"
        "  WHERE CAST(:key AS text) IS NOT NULL)"
        f" SELECT {_SELECTED_EXCHANGE}, {_SELECTED_DECISION}"
        " FROM logged, decided ORDER BY decided.id"
    )


async def _unless_keyed(
    conn: Connection, sql: str, params: dict[str, Any]
) -> list[dict[str, Any]] | None:
    """The rows of a logging statement, or None when another request under its idempotency
    key was written first (then this statement wrote nothing)."""
    try:
        return await _all(conn, sql, **params)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == _KEY_PKEY:
            return None
        raise


async def insert_exchange(
    conn: Connection, new: NewExchange, *, state: ExchangeState, review_reason: str | None
) -> tuple[ExchangeRecord, DecisionRecord] | None:
    """Log ``new`` in one statement: reserve its minutes (``ledger_reserve``), insert it in
    ``state`` with that reservation and its 'log' decision, write its key answered with it;
    return both rows as written, or None (nothing written) when a request under the key was
    written meanwhile."""
    rows = await _unless_keyed(
        conn,
        _logging_statement(
            "reserved AS (SELECT ((ledger_reserve(:timebank_id, :debit_account_id,"
            "  :credit_account_id, :minutes, 'exchange', :memo, NULL, NULL, NULL)).pending).id)",
            f"{_LOGGED_COLUMNS} review_reason, pending_transfer_id)"
            f"  {_LOGGED_VALUES} :state, :review_reason, reserved.id FROM reserved",
            "INSERT INTO exchange_decisions (timebank_id, exchange_id, action, from_state,"
            "  to_state, actor_user_id, actor_role, on_behalf_of)"
            " SELECT timebank_id, id, 'log', NULL, state, CAST(:actor_user_id AS bigint),"
            "  CAST(:actor_role AS text), CAST(:on_behalf_of AS bigint) FROM logged",
        ),
        {**_new_exchange_params(new), "state": state, "review_reason": review_reason},
    )
    return _written(rows[0]) if rows else None


async def insert_approved_exchange(
    conn: Connection, new: NewExchange, *, approver: Actor, approval_reason: str
) -> tuple[ExchangeRecord, list[DecisionRecord]] | None:
    """Log ``new`` as the policy approves it at once, in one statement: post its transfer
    (``ledger_post_transfer``), insert it as approved with that transfer, record both
    decisions ('log' by its actor, then 'auto_approve' by ``approver``) as logging and then
    approving would have, write its key answered with it; None (nothing written) when a
    request under the key was written meanwhile."""
    rows = await _unless_keyed(
        conn,
        _logging_statement(
            "posted AS (SELECT ((ledger_post_transfer(:timebank_id, :debit_account_id,"
            "  :credit_account_id, :minutes, 'exchange', :memo, NULL, NULL, NULL)).transfer).id)",
            f"{_LOGGED_COLUMNS} transfer_id) {_LOGGED_VALUES} 'approved', posted.id FROM posted",
            "INSERT INTO exchange_decisions (timebank_id, exchange_id, action, from_state,"
            "  to_state, actor_user_id, actor_role, on_behalf_of, reason)"
            " SELECT logged.timebank_id, logged.id, d.action, d.from_state, d.to_state,"
            "  d.actor_user_id, d.actor_role, d.on_behalf_of, d.reason"
            " FROM logged, (VALUES"
            "  (1, 'log', NULL, 'awaiting_approval', CAST(:actor_user_id AS bigint),"
            "   CAST(:actor_role AS text), CAST(:on_behalf_of AS bigint), NULL),"
            "  (2, 'auto_approve', 'awaiting_approval', 'approved',"
            "   CAST(:approver_user_id AS bigint), CAST(:approver_role AS text),"
            "   CAST(:approver_on_behalf_of AS bigint), CAST(:approval_reason AS text))"
            " ) AS d (step, action, from_state, to_state, actor_user_id, actor_role,"
            "  on_behalf_of, reason)"
            " ORDER BY d.step",
        ),
        {
            **_new_exchange_params(new),
            "approver_user_id": approver.user_id,
            "approver_role": approver.role,
            "approver_on_behalf_of": approver.on_behalf_of,
            "approval_reason": approval_reason,
        },
    )
    if not rows:
        return None
    written = [_written(row) for row in rows]
    return written[-1][0], [decision for _, decision in written]


# Exchange and decision rows as an INSERT or UPDATE writes them, selected side by side (the
# decision's columns prefixed ``d_``); the category slug is the caller's ``:category``.
_EXCHANGE_FIELDS = [f.name for f in fields(ExchangeRecord)]
_DECISION_FIELDS = [f.name for f in fields(DecisionRecord)]
_RETURNED_EXCHANGE = ", ".join(name for name in _EXCHANGE_FIELDS if name != "category")
_RETURNED_DECISION = ", ".join(_DECISION_FIELDS)
_SELECTED_EXCHANGE = ", ".join(
    "CAST(:category AS text) AS category" if name == "category" else f"logged.{name}"
    for name in _EXCHANGE_FIELDS
)
_SELECTED_DECISION = ", ".join(f"decided.{name} AS d_{name}" for name in _DECISION_FIELDS)


def _written(row: Mapping[str, Any]) -> tuple[ExchangeRecord, DecisionRecord]:
    return (
        ExchangeRecord(**{name: row[name] for name in _EXCHANGE_FIELDS}),
        DecisionRecord(**{name: row[f"d_{name}"] for name in _DECISION_FIELDS}),
    )


async def get_exchange(
    conn: Connection, timebank_id: int, exchange_id: int, *, lock: bool = False
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
    (``ledger_post_pending``, only once the exchange is found in that state) and records the
    transfer."""
    posting = (
        "(SELECT (r.transfer).id"
        "  FROM ledger_post_pending(:timebank_id, :pending_id, NULL, NULL, NULL) r)"
        if post_pending
        else "CAST(:transfer_id AS bigint)"
    )
    row = await _one(
        conn,
        "WITH logged AS ("
        "  UPDATE exchanges SET state = :to_state, updated_at = now(),"
        "    review_reason = coalesce(CAST(:review_reason AS text), review_reason),"
        f"    transfer_id = coalesce({posting}, transfer_id),"
        "    reversal_transfer_id = coalesce(CAST(:reversal_transfer_id AS bigint),"
        "                                    reversal_transfer_id)"
        "  WHERE id = :id AND timebank_id = :timebank_id AND state = :from_state"
        f"  RETURNING {_RETURNED_EXCHANGE}),"
        " decided AS ("
        "  INSERT INTO exchange_decisions (timebank_id, exchange_id, action, from_state,"
        "   to_state, actor_user_id, actor_role, on_behalf_of, reason)"
        "  SELECT timebank_id, id, CAST(:action AS text), CAST(:from_state AS text),"
        "   CAST(:to_state AS text), CAST(:actor_user_id AS bigint), CAST(:actor_role AS text),"
        f"   CAST(:on_behalf_of AS bigint), CAST(:reason AS text) FROM logged"
        f"   RETURNING {_RETURNED_DECISION})"
        f" SELECT {_SELECTED_EXCHANGE}, {_SELECTED_DECISION} FROM logged, decided",
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
        category=exchange.category,
        **({"pending_id": exchange.pending_transfer_id} if post_pending else {}),
    )
    return _written(row) if row is not None else None


async def decisions_of(
    conn: Connection, timebank_id: int, exchange_id: int
) -> list[DecisionRecord]:
    rows = await _all(
        conn,
        "SELECT id, action, from_state, to_state, actor_user_id, actor_role, on_behalf_of,"
        " reason, decided_at FROM exchange_decisions"
        " WHERE exchange_id = :exchange_id AND timebank_id = :timebank_id ORDER BY id",
        exchange_id=exchange_id,
        timebank_id=timebank_id,
    )
    return [DecisionRecord(**row) for row in rows]


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
