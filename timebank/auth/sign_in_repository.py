"""SQL for the sign-in counters (``timebank.auth.throttle`` decides what they mean)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from timebank.db.statements import Connection, execute, fetch, fetch_value

_CREATE_COUNTERS = (
    "INSERT INTO sign_in_counters (key) SELECT unnest($1::bytea[]) ON CONFLICT (key) DO NOTHING"
)
_LOCK_COUNTERS = (
    "SELECT key, CASE WHEN last_failed_at > now() - interval '1 day' THEN failures"
    " ELSE 0 END AS failures, last_failed_at, last_succeeded_at FROM sign_in_counters"
    " WHERE key = ANY($1::bytea[]) ORDER BY key FOR UPDATE"
)
_COUNT_FAILURE = (
    "UPDATE sign_in_counters SET"
    " failures = CASE WHEN last_failed_at > now() - interval '1 day'"
    "   THEN failures + 1 ELSE 1 END,"
    " last_failed_at = clock_timestamp(),"
    " expires_at = greatest(expires_at, now() + interval '1 day')"
    " WHERE key = ANY($1::bytea[])"
)
_START_AFRESH = (
    "UPDATE sign_in_counters SET failures = 0, last_failed_at = NULL,"
    " last_succeeded_at = now(), expires_at = now() + interval '30 days'"
    " WHERE key = $1"
)
_TAKE_BACK_FAILURE = (
    "UPDATE sign_in_counters SET failures = greatest(failures - 1, 0) WHERE key = ANY($1::bytea[])"
)
_PRUNE_COUNTERS = (
    "DELETE FROM sign_in_counters WHERE key IN (SELECT key FROM sign_in_counters"
    " WHERE expires_at < now() ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
)


async def sign_in_secret(conn: Connection) -> bytes:
    """The key of the sign-in counters' keyed hashes."""
    return bytes(await fetch_value(conn, "SELECT key FROM sign_in_key"))


async def lock_counters(
    conn: Connection, keys: Sequence[bytes], *, create: bool = True
) -> list[Mapping[str, Any] | None]:
    """The counters of ``keys``, in that order, locked until the transaction ends, so that
    parallel tries on one key take turns; created when missing if ``create`` (else None for
    a missing one). A failure count older than a day reads as none."""
    ordered = sorted(set(keys))  # one order for every transaction: no deadlock between them
    if create:
        await execute(conn, _CREATE_COUNTERS, ordered)
    rows = await fetch(conn, _LOCK_COUNTERS, ordered)
    by_key = {bytes(row["key"]): dict(row) for row in rows}
    return [by_key.get(key) for key in keys]


async def count_failure(conn: Connection, keys: Sequence[bytes]) -> None:
    """One more failure under each key (a count older than a day starts again at one)."""
    await execute(conn, _COUNT_FAILURE, list(keys))


async def count_success(
    conn: Connection, *, known_address: bytes, uncounted: Sequence[bytes]
) -> None:
    """A sign-in succeeded: the account from this address starts afresh and is remembered for
    30 days; the failure counted in advance under ``uncounted`` is taken back."""
    await execute(conn, _START_AFRESH, known_address)
    await execute(conn, _TAKE_BACK_FAILURE, list(uncounted))


async def prune_counters(conn: Connection, *, batch: int = 100) -> None:
    """Forget up to ``batch`` counters that have expired (each try prunes a few, so the table
    holds only what throttling still needs)."""
    await execute(conn, _PRUNE_COUNTERS, batch)
