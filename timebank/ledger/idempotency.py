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
primary key (``written_meanwhile``), writes nothing, and looks again. The SQL of all this is
the ledger's (``timebank.ledger.repository``: ``claim_key``, ``answer_key``,
``answered_key_column``, ``key_answer_cte``; the PL/pgSQL functions take a key's three parts
as their last three arguments)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from timebank.ledger.schemas import IdempotencyKey

__all__ = [
    "IdempotencyKey",
    "KeyedRequest",
    "fingerprint",
    "stored_result",
    "written_meanwhile",
]

_KEY_PKEY = "idempotency_keys_pkey"


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
