"""Idempotency keys: one protocol for every write a client may retry.

A request under a key is known by three things: its ``author`` (who sent it), the ``key`` they
chose, and its ``fingerprint`` (``fingerprint(operation, body)``). The key is kept in
``idempotency_keys`` with the answer given to the request, written in the same transaction
(or the same statement) as the write itself. Looking a key up gives one of three outcomes:

- not there: go ahead, and write the key answered with the result;
- there with this very fingerprint: the request was answered; give the stored answer again
  (``stored_result``) and write nothing;
- there with another fingerprint: refused (IdempotencyMismatch, SQLSTATE TBID0).

Two requests under one key at once: the second to write the key is refused by the key's
primary key (``written_meanwhile``), writes nothing, and looks again. A write outside the
ledger's functions claims and answers its key here (``claim_key``, ``answer_key``,
``claim_new_timebank_key``); the ledger's PL/pgSQL functions take a key's three parts as their
last three arguments, and a statement that writes to the ledger reads and writes its key with
``timebank.ledger.repository``'s ``answered_key_column`` and ``key_answer_cte``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from timebank.db.statements import Connection, fetch, fetch_one
from timebank.errors import IdempotencyMismatch
from timebank.ledger.schemas import IdempotencyKey

__all__ = [
    "IdempotencyKey",
    "KeyedRequest",
    "answer_key",
    "claim_key",
    "claim_new_timebank_key",
    "fingerprint",
    "stored_result",
    "written_meanwhile",
]

_KEY_PKEY = "idempotency_keys_pkey"
_CLAIM_KEY = "SELECT ledger_claim_key($1, $2, $3, $4) AS stored"
_ANSWER_KEY = "SELECT ledger_answer_key($1, $2, $3, CAST($4 AS jsonb))"
# A key whose write makes its own timebank: serialised on (author, key) until commit, then
# looked up in every timebank.
_LOCK_NEW_KEY = (
    "SELECT pg_advisory_xact_lock(hashtextextended('idempotency:' || $1 || ':' || $2, 0))"
)
_NEW_KEY_USES = "SELECT request_hash, result FROM idempotency_keys WHERE author = $1 AND key = $2"


def fingerprint(operation: str, request: Mapping[str, Any]) -> bytes:
    """The fingerprint of a request body, stored beside its idempotency key."""
    canonical = json.dumps({"operation": operation, **request}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).digest()


@dataclass(frozen=True)
class KeyedRequest:
    """A request sent under an idempotency key: who sent it, the key, the request's
    fingerprint."""

    author: str
    key: str
    fingerprint: bytes

    @classmethod
    def of(
        cls, operation: str, request: Mapping[str, Any], key: IdempotencyKey | None
    ) -> KeyedRequest | None:
        """The keyed request of ``request`` under ``key`` (None for no key)."""
        if key is None:
            return None
        return cls(key.author, key.key, fingerprint(operation, request))


def key_arguments(keyed: KeyedRequest | None) -> tuple[str | None, str | None, bytes | None]:
    """The last three arguments of a ledger function: author, key, fingerprint (or nulls)."""
    if keyed is None:
        return None, None, None
    return keyed.author, keyed.key, keyed.fingerprint


def stored_result(value: Any) -> dict[str, Any]:
    """A key's stored answer (jsonb arrives as text through asyncpg)."""
    return json.loads(value) if isinstance(value, str) else dict(value)


def written_meanwhile(exc: BaseException) -> bool:
    """Whether ``exc`` is the refusal of a key another request under it wrote first."""
    return (
        isinstance(exc, asyncpg.UniqueViolationError)
        and getattr(exc, "constraint_name", None) == _KEY_PKEY
    )


async def claim_key(
    conn: Connection, timebank_id: int, author: str, key: str, fingerprint: bytes
) -> dict[str, Any] | None:
    """Claim an idempotency key inside the caller's transaction: None when newly claimed (go
    ahead), the stored answer when this very request was already answered; another request
    under the key is refused (IdempotencyMismatch)."""
    row = await fetch_one(conn, _CLAIM_KEY, timebank_id, author, key, fingerprint)
    stored = row["stored"] if row is not None else None
    return stored_result(stored) if stored is not None else None


async def claim_new_timebank_key(
    conn: Connection, author: str, key: str, fingerprint: bytes
) -> dict[str, Any] | None:
    """``claim_key`` for a write that creates the timebank the key will belong to: the stored
    answer when this very request was answered (in whichever timebank it made), None to go
    ahead (then ``claim_key`` and ``answer_key`` in the new timebank, before commit); another
    request under the key is refused. Requests under one key wait for each other."""
    await fetch(conn, _LOCK_NEW_KEY, author, key)
    uses = await fetch(conn, _NEW_KEY_USES, author, key)
    for use in uses:
        if bytes(use["request_hash"]) == fingerprint:
            return stored_result(use["result"])
    if uses:
        raise IdempotencyMismatch(
            f"idempotency key {key!r} was already used for a different request"
        )
    return None


async def answer_key(
    conn: Connection, timebank_id: int, author: str, key: str, result: Mapping[str, Any]
) -> None:
    """Store the answer to a claimed key, in the same transaction that claimed it."""
    await fetch(conn, _ANSWER_KEY, timebank_id, author, key, json.dumps(result))
