"""All ledger SQL. Each write is one call of a PL/pgSQL function from ``schema/sql`` that
returns the row it wrote, so a write is one round trip.

Every function here runs on either connection the service has: a SQLAlchemy
``AsyncConnection`` (inside a caller's transaction, e.g. approving an exchange) or the plain
asyncpg connection under it (the ledger's own one-statement transactions, the hot path).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeAlias

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.errors import NotFound
from timebank.ledger.schemas import (
    AccountBalance,
    IdempotencyKey,
    PendingRecord,
    StatementLine,
    TransferRecord,
    TransferRequest,
)

Connection: TypeAlias = AsyncConnection | asyncpg.Connection

_TRANSFER_FIELDS = [f.name for f in fields(TransferRecord)]
_PENDING_FIELDS = [f.name for f in fields(PendingRecord)]


async def _fetch(conn: Connection, sql: str, *args: Any) -> Sequence[Mapping[str, Any]]:
    if isinstance(conn, AsyncConnection):
        result = await conn.exec_driver_sql(sql, args)
        return [dict(row) for row in result.mappings()]
    return await conn.fetch(sql, *args)


async def _fetch_one(conn: Connection, sql: str, *args: Any) -> Mapping[str, Any] | None:
    rows = await _fetch(conn, sql, *args)
    return rows[0] if rows else None


def _transfer(row: Mapping[str, Any]) -> TransferRecord:
    return TransferRecord(**{name: row[name] for name in _TRANSFER_FIELDS})


def _pending(row: Mapping[str, Any]) -> PendingRecord:
    return PendingRecord(**{name: row[name] for name in _PENDING_FIELDS})


def request_hash(operation: str, request: Mapping[str, Any]) -> bytes:
    """The fingerprint of a request body, stored beside its idempotency key."""
    canonical = json.dumps({"operation": operation, **request}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).digest()


def _key_args(
    operation: str, request: Mapping[str, Any], key: IdempotencyKey | None
) -> tuple[str | None, str | None, bytes | None]:
    if key is None:
        return None, None, None
    return key.author, key.key, request_hash(operation, request)


_POST_TRANSFER = (
    "SELECT r.replayed, (r.transfer).*"
    " FROM ledger_post_transfer($1, $2, $3, $4, $5, $6, $7, $8, $9) r"
)
_RESERVE = (
    "SELECT r.replayed, (r.pending).* FROM ledger_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9) r"
)
_POST_PENDING = "SELECT r.replayed, (r.transfer).* FROM ledger_post_pending($1, $2, $3, $4, $5) r"
_VOID_PENDING = "SELECT r.replayed, (r.pending).* FROM ledger_void_pending($1, $2, $3, $4, $5) r"
_REVERSE = "SELECT r.replayed, (r.transfer).* FROM ledger_reverse($1, $2, $3, $4, $5, $6) r"
_POST_BATCH = (
    "SELECT r.replayed, (r.transfer).* FROM ledger_post_batch($1, $2, $3, $4, $5, $6, $7, $8, $9) r"
)


async def post_transfer(
    conn: Connection,
    *,
    timebank_id: int,
    debit_account_id: int,
    credit_account_id: int,
    minutes: int,
    kind: str,
    memo: str | None,
    key: IdempotencyKey | None,
) -> tuple[TransferRecord, bool]:
    request = {
        "timebank_id": timebank_id,
        "debit": debit_account_id,
        "credit": credit_account_id,
        "minutes": minutes,
        "kind": kind,
        "memo": memo,
    }
    row = await _fetch_one(
        conn,
        _POST_TRANSFER,
        timebank_id,
        debit_account_id,
        credit_account_id,
        minutes,
        kind,
        memo,
        *_key_args("post", request, key),
    )
    assert row is not None
    return _transfer(row), row["replayed"]


async def post_batch(
    conn: Connection,
    *,
    timebank_id: int,
    transfers: Sequence[TransferRequest],
    kind: str,
    key: IdempotencyKey | None,
) -> tuple[list[TransferRecord], bool]:
    debits = [t.debit_account_id for t in transfers]
    credits = [t.credit_account_id for t in transfers]
    minutes = [t.minutes for t in transfers]
    memos = [t.memo for t in transfers]
    request = {
        "timebank_id": timebank_id,
        "debits": debits,
        "credits": credits,
        "minutes": minutes,
        "kind": kind,
        "memos": memos,
    }
    rows = await _fetch(
        conn,
        _POST_BATCH,
        timebank_id,
        debits,
        credits,
        minutes,
        kind,
        memos,
        *_key_args("post_batch", request, key),
    )
    return [_transfer(row) for row in rows], bool(rows) and rows[0]["replayed"]


async def reserve(
    conn: Connection,
    *,
    timebank_id: int,
    debit_account_id: int,
    credit_account_id: int,
    minutes: int,
    kind: str,
    memo: str | None,
    key: IdempotencyKey | None,
) -> tuple[PendingRecord, bool]:
    request = {
        "timebank_id": timebank_id,
        "debit": debit_account_id,
        "credit": credit_account_id,
        "minutes": minutes,
        "kind": kind,
        "memo": memo,
    }
    row = await _fetch_one(
        conn,
        _RESERVE,
        timebank_id,
        debit_account_id,
        credit_account_id,
        minutes,
        kind,
        memo,
        *_key_args("reserve", request, key),
    )
    assert row is not None
    return _pending(row), row["replayed"]


async def post_pending(
    conn: Connection, *, timebank_id: int, pending_id: int, key: IdempotencyKey | None
) -> tuple[TransferRecord, bool]:
    request = {"timebank_id": timebank_id, "pending_id": pending_id}
    row = await _fetch_one(
        conn, _POST_PENDING, timebank_id, pending_id, *_key_args("post_pending", request, key)
    )
    assert row is not None
    return _transfer(row), row["replayed"]


async def void_pending(
    conn: Connection, *, timebank_id: int, pending_id: int, key: IdempotencyKey | None
) -> tuple[PendingRecord, bool]:
    request = {"timebank_id": timebank_id, "pending_id": pending_id}
    row = await _fetch_one(
        conn, _VOID_PENDING, timebank_id, pending_id, *_key_args("void_pending", request, key)
    )
    assert row is not None
    return _pending(row), row["replayed"]


async def reverse(
    conn: Connection,
    *,
    timebank_id: int,
    transfer_id: int,
    reason: str,
    key: IdempotencyKey | None,
) -> tuple[TransferRecord, bool]:
    request = {"timebank_id": timebank_id, "transfer_id": transfer_id, "reason": reason}
    row = await _fetch_one(
        conn, _REVERSE, timebank_id, transfer_id, reason, *_key_args("reverse", request, key)
    )
    assert row is not None
    return _transfer(row), row["replayed"]


def stored_result(value: Any) -> dict[str, Any]:
    """An idempotency key's stored result (jsonb arrives as text through asyncpg)."""
    return json.loads(value) if isinstance(value, str) else dict(value)


async def claim_key(
    conn: AsyncConnection, timebank_id: int, author: str, key: str, fingerprint: bytes
) -> dict[str, Any] | None:
    """Claim an idempotency key inside the caller's transaction: None when newly claimed (go
    ahead), the stored result when this exact request was already answered. A different
    request under the same key is refused (IdempotencyMismatch, SQLSTATE TBID0)."""
    stored = (
        await conn.execute(
            text("SELECT ledger_claim_key(:timebank_id, :author, :key, :hash)"),
            {"timebank_id": timebank_id, "author": author, "key": key, "hash": fingerprint},
        )
    ).scalar_one()
    return stored_result(stored) if stored is not None else None


async def answer_key(
    conn: AsyncConnection, timebank_id: int, author: str, key: str, result: Mapping[str, Any]
) -> None:
    """Store the answer to a claimed key, in the same transaction that claimed it."""
    await conn.execute(
        text("SELECT ledger_answer_key(:timebank_id, :author, :key, CAST(:result AS jsonb))"),
        {"timebank_id": timebank_id, "author": author, "key": key, "result": json.dumps(result)},
    )


async def get_balance(conn: Connection, timebank_id: int, account_id: int) -> AccountBalance:
    row = await _fetch_one(
        conn,
        "SELECT id AS account_id, balance AS balance_minutes,"
        " pending_in AS pending_in_minutes, pending_out AS pending_out_minutes,"
        " floor AS floor_minutes, ceiling AS ceiling_minutes, version, flagged_by_reversal_id"
        " FROM accounts WHERE id = $1 AND timebank_id = $2",
        account_id,
        timebank_id,
    )
    if row is None:
        raise NotFound(f"account {account_id} not found in this timebank")
    return AccountBalance(**row)


async def statement_lines(
    conn: Connection,
    timebank_id: int,
    account_id: int,
    *,
    before_version: int | None,
    limit: int,
) -> list[StatementLine]:
    """Newest first; keyset pagination on the account's gapless version numbers."""
    rows = await _fetch(
        conn,
        "SELECT p.account_version, p.transfer_id, t.kind, p.minutes, p.balance_after,"
        " CASE WHEN t.debit_account_id = p.account_id THEN t.credit_account_id"
        "      ELSE t.debit_account_id END AS counterparty_account_id,"
        " t.memo, t.created_at"
        " FROM postings p JOIN transfers t ON t.id = p.transfer_id"
        " WHERE p.account_id = $1 AND p.timebank_id = $2"
        "   AND ($3::bigint IS NULL OR p.account_version < $3::bigint)"
        " ORDER BY p.account_version DESC LIMIT $4",
        account_id,
        timebank_id,
        before_version,
        limit,
    )
    return [StatementLine(**row) for row in rows]


async def set_limits(
    conn: Connection,
    *,
    timebank_id: int,
    account_id: int,
    floor: int,
    ceiling: int,
    user_id: int,
    reason: str,
) -> Mapping[str, Any]:
    """Change one account's limits and record who, when, from, to and why, in one call
    (``ledger_set_limits``); refused as a limit error if they would not hold the account."""
    row = await _fetch_one(
        conn,
        "SELECT c.*, a.participant_id FROM ledger_set_limits($1, $2, $3, $4, $5, $6) c"
        " JOIN accounts a ON a.id = c.account_id",
        timebank_id,
        account_id,
        floor,
        ceiling,
        user_id,
        reason,
    )
    assert row is not None, "ledger_set_limits returns the change or raises"
    return row


async def flagged_accounts(conn: Connection, timebank_id: int) -> Sequence[Mapping[str, Any]]:
    """Accounts a reversal has left outside their limits, oldest flag first."""
    return await _fetch(
        conn,
        "SELECT participant_id, id AS account_id, balance AS balance_minutes,"
        " pending_in AS pending_in_minutes, pending_out AS pending_out_minutes,"
        " floor AS floor_minutes, ceiling AS ceiling_minutes, flagged_by_reversal_id"
        " FROM accounts WHERE timebank_id = $1 AND flagged_by_reversal_id IS NOT NULL"
        " ORDER BY flagged_by_reversal_id",
        timebank_id,
    )
