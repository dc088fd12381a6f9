"""All ledger SQL. Each write is one call of a PL/pgSQL function from ``schema/sql`` on the
caller's connection, inside the caller's transaction."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.errors import NotFound
from timebank.ledger.schemas import (
    AccountBalance,
    IdempotencyKey,
    PendingRecord,
    StatementLine,
    TransferRecord,
)


def request_hash(operation: str, fields: dict[str, Any]) -> bytes:
    """The fingerprint of a request body, stored beside its idempotency key."""
    canonical = json.dumps({"operation": operation, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).digest()


def _key_params(operation: str, fields: dict[str, Any], key: IdempotencyKey | None) -> dict:
    if key is None:
        return {"author": None, "key": None, "hash": None}
    return {"author": key.author, "key": key.key, "hash": request_hash(operation, fields)}


_POST_TRANSFER = text(
    "SELECT transfer_id, replayed FROM ledger_post_transfer("
    ":timebank_id, :debit, :credit, :minutes, :kind, :memo, :author, :key, :hash)"
)
_RESERVE = text(
    "SELECT pending_id, replayed FROM ledger_reserve("
    ":timebank_id, :debit, :credit, :minutes, :kind, :memo, :author, :key, :hash)"
)
_POST_PENDING = text(
    "SELECT transfer_id, replayed FROM ledger_post_pending("
    ":timebank_id, :pending_id, :author, :key, :hash)"
)
_VOID_PENDING = text(
    "SELECT pending_id, replayed FROM ledger_void_pending("
    ":timebank_id, :pending_id, :author, :key, :hash)"
)
_REVERSE = text(
    "SELECT transfer_id, replayed FROM ledger_reverse("
    ":timebank_id, :transfer_id, :reason, :author, :key, :hash)"
)


async def post_transfer(
    conn: AsyncConnection,
    *,
    timebank_id: int,
    debit_account_id: int,
    credit_account_id: int,
    minutes: int,
    kind: str,
    memo: str | None,
    key: IdempotencyKey | None,
) -> tuple[int, bool]:
    fields = {
        "timebank_id": timebank_id,
        "debit": debit_account_id,
        "credit": credit_account_id,
        "minutes": minutes,
        "kind": kind,
        "memo": memo,
    }
    row = (await conn.execute(_POST_TRANSFER, {**fields, **_key_params("post", fields, key)})).one()
    return row.transfer_id, row.replayed


async def reserve(
    conn: AsyncConnection,
    *,
    timebank_id: int,
    debit_account_id: int,
    credit_account_id: int,
    minutes: int,
    kind: str,
    memo: str | None,
    key: IdempotencyKey | None,
) -> tuple[int, bool]:
    fields = {
        "timebank_id": timebank_id,
        "debit": debit_account_id,
        "credit": credit_account_id,
        "minutes": minutes,
        "kind": kind,
        "memo": memo,
    }
    row = (await conn.execute(_RESERVE, {**fields, **_key_params("reserve", fields, key)})).one()
    return row.pending_id, row.replayed


async def post_pending(
    conn: AsyncConnection, *, timebank_id: int, pending_id: int, key: IdempotencyKey | None
) -> tuple[int, bool]:
    fields = {"timebank_id": timebank_id, "pending_id": pending_id}
    params = {**fields, **_key_params("post_pending", fields, key)}
    row = (await conn.execute(_POST_PENDING, params)).one()
    return row.transfer_id, row.replayed


async def void_pending(
    conn: AsyncConnection, *, timebank_id: int, pending_id: int, key: IdempotencyKey | None
) -> tuple[int, bool]:
    fields = {"timebank_id": timebank_id, "pending_id": pending_id}
    params = {**fields, **_key_params("void_pending", fields, key)}
    row = (await conn.execute(_VOID_PENDING, params)).one()
    return row.pending_id, row.replayed


async def reverse(
    conn: AsyncConnection,
    *,
    timebank_id: int,
    transfer_id: int,
    reason: str,
    key: IdempotencyKey | None,
) -> tuple[int, bool]:
    fields = {"timebank_id": timebank_id, "transfer_id": transfer_id, "reason": reason}
    params = {**fields, **_key_params("reverse", fields, key)}
    row = (await conn.execute(_REVERSE, params)).one()
    return row.transfer_id, row.replayed


async def get_transfer(conn: AsyncConnection, timebank_id: int, transfer_id: int) -> TransferRecord:
    row = (
        await conn.execute(
            text(
                "SELECT id, timebank_id, debit_account_id, credit_account_id, minutes, kind,"
                " pending_transfer_id, reverses_transfer_id, memo, created_at"
                " FROM transfers WHERE id = :id AND timebank_id = :timebank_id"
            ),
            {"id": transfer_id, "timebank_id": timebank_id},
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"transfer {transfer_id} not found in this timebank")
    return TransferRecord(**row._mapping)


async def get_pending(conn: AsyncConnection, timebank_id: int, pending_id: int) -> PendingRecord:
    row = (
        await conn.execute(
            text(
                "SELECT id, timebank_id, debit_account_id, credit_account_id, minutes, kind,"
                " state, memo, created_at, resolved_at"
                " FROM pending_transfers WHERE id = :id AND timebank_id = :timebank_id"
            ),
            {"id": pending_id, "timebank_id": timebank_id},
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"reservation {pending_id} not found in this timebank")
    return PendingRecord(**row._mapping)


async def get_balance(conn: AsyncConnection, timebank_id: int, account_id: int) -> AccountBalance:
    row = (
        await conn.execute(
            text(
                "SELECT id AS account_id, balance AS balance_minutes,"
                " pending_in AS pending_in_minutes, pending_out AS pending_out_minutes,"
                " floor AS floor_minutes, ceiling AS ceiling_minutes, version"
                " FROM accounts WHERE id = :id AND timebank_id = :timebank_id"
            ),
            {"id": account_id, "timebank_id": timebank_id},
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"account {account_id} not found in this timebank")
    return AccountBalance(**row._mapping)


async def statement_lines(
    conn: AsyncConnection,
    timebank_id: int,
    account_id: int,
    *,
    before_version: int | None,
    limit: int,
) -> list[StatementLine]:
    """Newest first; keyset pagination on the account's gapless version numbers."""
    rows = await conn.execute(
        text(
            "SELECT p.account_version, p.transfer_id, t.kind, p.minutes, p.balance_after,"
            " CASE WHEN t.debit_account_id = p.account_id THEN t.credit_account_id"
            "      ELSE t.debit_account_id END AS counterparty_account_id,"
            " t.memo, t.created_at"
            " FROM postings p JOIN transfers t ON t.id = p.transfer_id"
            " WHERE p.account_id = :account_id AND p.timebank_id = :timebank_id"
            "   AND (CAST(:before AS bigint) IS NULL OR p.account_version < :before)"
            " ORDER BY p.account_version DESC LIMIT :limit"
        ),
        {
            "account_id": account_id,
            "timebank_id": timebank_id,
            "before": before_version,
            "limit": limit,
        },
    )
    return [StatementLine(**row._mapping) for row in rows]
