"""SQL for the sign-in counters (``timebank.auth.throttle`` decides what they mean)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def sign_in_secret(conn: AsyncConnection) -> bytes:
    """The key of the sign-in counters' keyed hashes."""
    return bytes((await conn.execute(text("SELECT key FROM sign_in_key"))).scalar_one())


async def lock_counters(
    conn: AsyncConnection, keys: Sequence[bytes], *, create: bool = True
) -> list[Mapping[str, Any] | None]:
    """The counters of ``keys``, in that order, locked until the transaction ends, so that
    parallel tries on one key take turns; created when missing if ``create`` (else None for
    a missing one). A failure count older than a day reads as none."""
    ordered = sorted(set(keys))  # one order for every transaction: no deadlock between them
    if create:
        await conn.execute(
            text(
                "INSERT INTO sign_in_counters (key) SELECT unnest(CAST(:keys AS bytea[]))"
                " ON CONFLICT (key) DO NOTHING"
            ),
            {"keys": ordered},
        )
    rows = await conn.execute(
        text(
            "SELECT key, CASE WHEN last_failed_at > now() - interval '1 day' THEN failures"
            " ELSE 0 END AS failures, last_failed_at, last_succeeded_at FROM sign_in_counters"
            " WHERE key = ANY(CAST(:keys AS bytea[])) ORDER BY key FOR UPDATE"
        ),
        {"keys": ordered},
    )
    by_key = {bytes(row["key"]): dict(row) for row in rows.mappings()}
    return [by_key.get(key) for key in keys]


async def count_failure(conn: AsyncConnection, keys: Sequence[bytes]) -> None:
    """One more failure under each key (a count older than a day starts again at one)."""
    await conn.execute(
        text(
            "UPDATE sign_in_counters SET"
            " failures = CASE WHEN last_failed_at > now() - interval '1 day'"
            "   THEN failures + 1 ELSE 1 END,"
            " last_failed_at = clock_timestamp(),"
            " expires_at = greatest(expires_at, now() + interval '1 day')"
            " WHERE key = ANY(CAST(:keys AS bytea[]))"
        ),
        {"keys": list(keys)},
    )


async def count_success(
    conn: AsyncConnection, *, known_address: bytes, uncounted: Sequence[bytes]
) -> None:
    """A sign-in succeeded: the account from this address starts afresh and is remembered for
    30 days; the failure counted in advance under ``uncounted`` is taken back."""
    await conn.execute(
        text(
            "UPDATE sign_in_counters SET failures = 0, last_failed_at = NULL,"
            " last_succeeded_at = now(), expires_at = now() + interval '30 days'"
            " WHERE key = :key"
        ),
        {"key": known_address},
    )
    await conn.execute(
        text(
            "UPDATE sign_in_counters SET failures = greatest(failures - 1, 0)"
            " WHERE key = ANY(CAST(:keys AS bytea[]))"
        ),
        {"keys": list(uncounted)},
    )


async def prune_counters(conn: AsyncConnection, *, batch: int = 100) -> None:
    """Forget up to ``batch`` counters that have expired (each try prunes a few, so the table
    holds only what throttling still needs)."""
    await conn.execute(
        text(
            "DELETE FROM sign_in_counters WHERE key IN (SELECT key FROM sign_in_counters"
            " WHERE expires_at < now() ORDER BY expires_at LIMIT :batch"
            " FOR UPDATE SKIP LOCKED)"
        ),
        {"batch": batch},
    )
