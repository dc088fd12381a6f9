"""The one door to the ledger: every write to it, and every SQL text that names a ``ledger_*``
database function, is here. Each write is one call of a PL/pgSQL function that returns the row
it wrote, so a write is one round trip; each takes the caller's connection (``Connection``), so
it runs in the caller's transaction or, on a plain asyncpg connection, as its own.

A statement elsewhere that must write to the ledger in the same round trip as its own rows (the
exchanges' statements) embeds a piece exported here (``reserve_cte``, ``post_transfer_cte``,
``post_pending_id``, ``answered_key_column``, ``key_answer_cte``): SQLAlchemy Core built on
``timebank.db.tables``, given the expressions of its arguments, for a statement compiled once at
import. Idempotency keys follow ``timebank.ledger.idempotency``. The writes that move minutes
to or from the community pot (gifts, grants, opening balances, leaving) are the door's too, in
``timebank.ledger.pot``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar

import asyncpg
from sqlalchemy import LargeBinary, Text, cast, func, insert, null, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import Function
from sqlalchemy.sql.selectable import CTE, ScalarSelect

from timebank.db import tables
from timebank.db.compose import Expr, field
from timebank.db.statements import Connection, fetch, fetch_one
from timebank.ledger.idempotency import KeyedRequest, key_arguments
from timebank.ledger.schemas import (
    BatchResult,
    DirectKind,
    IdempotencyKey,
    LockedAccount,
    PendingRecord,
    PendingResult,
    PostResult,
    TransferRecord,
    TransferRequest,
)

__all__ = [
    "Connection",
    "answered_key_column",
    "call_keyed",
    "grant_welcome",
    "key_answer_cte",
    "lock_accounts",
    "post_batch",
    "post_pending",
    "post_pending_id",
    "post_transfer",
    "post_transfer_cte",
    "reserve",
    "reserve_cte",
    "reverse",
    "set_limits",
    "void_pending",
]

R = TypeVar("R")

_TRANSFER_FIELDS = [f.name for f in fields(TransferRecord)]
_PENDING_FIELDS = [f.name for f in fields(PendingRecord)]

WELCOME_MEMO = "Welcome hours"

_POST_TRANSFER = (
    "SELECT r.replayed, (r.transfer).*"
    " FROM ledger_post_transfer($1, $2, $3, $4, $5, $6, $7, $8, $9) r"
)
POST_TRANSFER = _POST_TRANSFER  # the statement alone, for the benchmark that measures it bare
_RESERVE = (
    "SELECT r.replayed, (r.pending).* FROM ledger_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9) r"
)
_POST_PENDING = "SELECT r.replayed, (r.transfer).* FROM ledger_post_pending($1, $2, $3, $4, $5) r"
_VOID_PENDING = "SELECT r.replayed, (r.pending).* FROM ledger_void_pending($1, $2, $3, $4, $5) r"
_REVERSE = "SELECT r.replayed, (r.transfer).* FROM ledger_reverse($1, $2, $3, $4, $5, $6) r"
_POST_BATCH = (
    "SELECT r.replayed, (r.transfer).* FROM ledger_post_batch($1, $2, $3, $4, $5, $6, $7, $8, $9) r"
)
_SET_LIMITS = (
    "SELECT c.*, a.participant_id FROM ledger_set_limits($1, $2, $3, $4, $5, $6) c"
    " JOIN accounts a ON a.id = c.account_id"
)


def _transfer(row: Mapping[str, Any]) -> PostResult:
    record = TransferRecord(**{name: row[name] for name in _TRANSFER_FIELDS})
    return PostResult(transfer=record, replayed=row["replayed"])


def _pending(row: Mapping[str, Any]) -> PendingResult:
    record = PendingRecord(**{name: row[name] for name in _PENDING_FIELDS})
    return PendingResult(pending=record, replayed=row["replayed"])


async def call_keyed(
    conn: Connection,
    statement: str,
    operation: str,
    request: Mapping[str, Any],
    key: IdempotencyKey | None,
) -> Mapping[str, Any]:
    """The one row of a ledger function called with ``request``'s values in order, then the
    key's three parts (its fingerprint taken of ``operation`` and ``request``)."""
    keyed = KeyedRequest.of(operation, request, key)
    row = await fetch_one(conn, statement, *request.values(), *key_arguments(keyed))
    assert row is not None, "a ledger function returns what it wrote or raises"
    return row


@dataclass(frozen=True)
class _OneWay(Generic[R]):
    """A ledger write that moves a transfer's minutes one way, at once or reserved: the
    statement calling its function, the operation its key's fingerprint names, how its row
    reads. Called with the timebank, the transfer, its kind and optional key."""

    statement: str
    operation: str
    read: Callable[[Mapping[str, Any]], R]

    async def __call__(
        self,
        conn: Connection,
        timebank_id: int,
        transfer: TransferRequest,
        *,
        kind: DirectKind = "exchange",
        key: IdempotencyKey | None = None,
    ) -> R:
        request = {  # the function's arguments in its order, named as fingerprinted
            "timebank_id": timebank_id,
            "debit": transfer.debit_account_id,
            "credit": transfer.credit_account_id,
            "minutes": transfer.minutes,
            "kind": kind,
            "memo": transfer.memo,
        }
        return self.read(await call_keyed(conn, self.statement, self.operation, request, key))


post_transfer = _OneWay(_POST_TRANSFER, "post", _transfer)
"""Post one transfer at once: its minutes from the debit to the credit account."""

reserve = _OneWay(_RESERVE, "reserve", _pending)
"""Reserve minutes for a pending exchange; they count against both accounts' limits."""


_LOCK_ACCOUNTS = (
    "SELECT id AS account_id, balance, pending_in, pending_out, floor, ceiling,"
    " closed_at IS NOT NULL AS closed"
    " FROM accounts WHERE timebank_id = $1 AND id = ANY($2::bigint[])"
    " ORDER BY id FOR UPDATE"
)


async def lock_accounts(
    conn: Connection, timebank_id: int, account_ids: Sequence[int]
) -> dict[int, LockedAccount]:
    """Lock these accounts in ascending id order (the order every write of the door locks
    in) until the caller's transaction ends, and read what limits them: for a write of many
    legs, which then checks every leg before it writes one and meets no deadlock."""
    rows = await fetch(conn, _LOCK_ACCOUNTS, timebank_id, sorted(set(account_ids)))
    return {row["account_id"]: LockedAccount(**row) for row in rows}


async def grant_welcome(
    conn: Connection, timebank_id: int, fund_account_id: int, account_id: int, minutes: int
) -> PostResult:
    """A new participant's welcome hours, from the timebank's community fund."""
    grant = TransferRequest(fund_account_id, account_id, minutes, WELCOME_MEMO)
    return await post_transfer(conn, timebank_id, grant, kind="grant")


async def post_batch(
    conn: Connection,
    timebank_id: int,
    transfers: Sequence[TransferRequest],
    *,
    kind: DirectKind = "exchange",
    key: IdempotencyKey | None = None,
) -> BatchResult:
    """Post many transfers, all or none; each account is locked and updated once, and no
    account passes a limit at any step of the batch."""
    request = {
        "timebank_id": timebank_id,
        "debits": [t.debit_account_id for t in transfers],
        "credits": [t.credit_account_id for t in transfers],
        "minutes": [t.minutes for t in transfers],
        "kind": kind,
        "memos": [t.memo for t in transfers],
    }
    keyed = KeyedRequest.of("post_batch", request, key)
    rows = await fetch(conn, _POST_BATCH, *request.values(), *key_arguments(keyed))
    posted = [_transfer(row).transfer for row in rows]
    return BatchResult(transfers=posted, replayed=bool(rows) and rows[0]["replayed"])


async def post_pending(
    conn: Connection, timebank_id: int, pending_id: int, *, key: IdempotencyKey | None = None
) -> PostResult:
    """Post a reservation; it was checked against the limits when it was made."""
    request = {"timebank_id": timebank_id, "pending_id": pending_id}
    return _transfer(await call_keyed(conn, _POST_PENDING, "post_pending", request, key))


async def void_pending(
    conn: Connection, timebank_id: int, pending_id: int, *, key: IdempotencyKey | None = None
) -> PendingResult:
    """Release a reservation without posting it."""
    request = {"timebank_id": timebank_id, "pending_id": pending_id}
    return _pending(await call_keyed(conn, _VOID_PENDING, "void_pending", request, key))


async def reverse(
    conn: Connection,
    timebank_id: int,
    transfer_id: int,
    reason: str,
    *,
    key: IdempotencyKey | None = None,
) -> PostResult:
    """Reverse a posted transfer, once, with a reason: the same minutes move back."""
    request = {"timebank_id": timebank_id, "transfer_id": transfer_id, "reason": reason}
    return _transfer(await call_keyed(conn, _REVERSE, "reverse", request, key))


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
    """Change one account's limits and record who, when, from, to and why, in one call;
    refused as a limit error if they would not hold the account."""
    row = await fetch_one(
        conn, _SET_LIMITS, timebank_id, account_id, floor, ceiling, user_id, reason
    )
    assert row is not None, "ledger_set_limits returns the change or raises"
    return row


# Pieces for a statement of another package that writes to the ledger in its own round trip,
# built on the tables with SQLAlchemy Core. Each takes the SQL expressions of its arguments
# (``compose.arg(n)`` or columns), in the order of the function.


_UNKEYED = (null(), null(), null())  # a piece's write is keyed by the statement around it


def _exchange_cte(
    function: Callable[..., Function[Any]], result: str, name: str, args: tuple[Expr, ...]
) -> CTE:
    """A CTE ``name`` with one column ``id``: that of the ``result`` that ``function``, a
    one-way write, returns for an unkeyed exchange of ``args`` (timebank, debit, credit,
    minutes, memo)."""
    timebank_id, debit, credit, minutes, memo = args
    written = function(timebank_id, debit, credit, minutes, "exchange", memo, *_UNKEYED)
    return select(field(field(written, result), "id").label("id")).cte(name)


def reserve_cte(
    name: str, timebank_id: Expr, debit: Expr, credit: Expr, minutes: Expr, memo: Expr
) -> CTE:
    """A CTE ``name`` with one column ``id``: the exchange reservation it makes, unkeyed."""
    args = (timebank_id, debit, credit, minutes, memo)
    return _exchange_cte(func.ledger_reserve, "pending", name, args)


def post_transfer_cte(
    name: str, timebank_id: Expr, debit: Expr, credit: Expr, minutes: Expr, memo: Expr
) -> CTE:
    """A CTE ``name`` with one column ``id``: the exchange transfer it posts, unkeyed."""
    args = (timebank_id, debit, credit, minutes, memo)
    return _exchange_cte(func.ledger_post_transfer, "transfer", name, args)


def post_pending_id(timebank_id: Expr, pending_id: Expr) -> ScalarSelect[Any]:
    """A scalar subquery: the id of the transfer that posts reservation ``pending_id``."""
    posted = func.ledger_post_pending(timebank_id, pending_id, *_UNKEYED)
    r = posted.table_valued("transfer").alias("r")
    return select(field(r.c.transfer, "id")).scalar_subquery()


def answered_key_column(
    timebank_id: Expr,
    author: Expr,
    key: Expr,
    fingerprint: Expr,
    readable: ColumnElement[bool] | None = None,
) -> ScalarSelect[Any]:
    """A scalar subquery: the stored answer of the key, for a request of ``fingerprint``
    (null when the key is unused or ``readable`` does not hold; refused, IdempotencyMismatch,
    when the key answered another request)."""
    k = tables.idempotency_keys.alias("k")
    answer = func.ledger_answered_key(k.c.key, k.c.request_hash, k.c.result, fingerprint)
    conditions = [k.c.timebank_id == timebank_id, k.c.author == author, k.c.key == cast(key, Text)]
    where = conditions if readable is None else [readable, *conditions]
    return select(answer).where(*where).scalar_subquery()


def key_answer_cte(
    name: str, source: CTE, author: Expr, key: Expr, fingerprint: Expr, answer: Expr
) -> CTE:
    """A CTE ``name`` that writes the key (when ``key`` is not null) answered with the
    ``answer`` expression over the one row of CTE ``source`` (its ``timebank_id``). Another
    request under the key written first refuses it (``idempotency.written_meanwhile``)."""
    keys = tables.idempotency_keys
    key_text = cast(key, Text)
    answered = select(
        source.c.timebank_id, cast(author, Text), key_text, cast(fingerprint, LargeBinary), answer
    ).where(key_text.is_not(None))
    columns = ["timebank_id", "author", "key", "request_hash", "result"]
    return insert(keys).from_select(columns, answered).cte(name)


# Bulk writes, for building large ledgers (benchmarks now, imports later): the same database
# functions as above, driven by arrays so that one statement posts thousands of transfers.

_POST_RANDOM = """
    SELECT count(ledger_post_transfer(
               $1, ids[i + 1], ids[CASE WHEN j >= i THEN j + 2 ELSE j + 1 END],
               1 + floor(random() * $3)::bigint, 'exchange', 'seed', NULL, NULL, NULL))
      FROM (SELECT floor(random() * n)::int AS i, floor(random() * (n - 1))::int AS j,
                   $2::bigint[] AS ids
              FROM (SELECT cardinality($2::bigint[]) AS n) AS sizes,
                   generate_series(1, $4) AS g) AS pairs
"""

_POST_MANY = """
    SELECT array_agg((b.transfer).id ORDER BY (b.transfer).id)
      FROM ledger_post_batch($1, $2::bigint[], $3::bigint[], $4::bigint[], 'exchange',
                             $5::text[], NULL, NULL, NULL) AS b
"""

_REVERSE_MANY = """
    SELECT (r.transfer).id
      FROM unnest($2::bigint[], $3::text[]) WITH ORDINALITY AS u(transfer_id, reason, ord)
     CROSS JOIN LATERAL ledger_reverse($1, u.transfer_id, u.reason, NULL, NULL, NULL) AS r
     ORDER BY u.ord
"""


async def post_random(
    conn: asyncpg.Connection,
    timebank_id: int,
    account_ids: Sequence[int],
    max_minutes: int,
    count: int,
) -> int:
    """``count`` transfers of 1 to ``max_minutes`` between random pairs of distinct accounts
    (a history to measure against); the number posted."""
    return int(await conn.fetchval(_POST_RANDOM, timebank_id, account_ids, max_minutes, count))


async def post_many(
    conn: asyncpg.Connection,
    timebank_id: int,
    *,
    debits: Sequence[int],
    credits: Sequence[int],
    minutes: Sequence[int],
    memos: Sequence[str],
) -> list[int]:
    """Exchange transfers, one per position of the arrays, in one batch; their ids in order."""
    ids = await conn.fetchval(_POST_MANY, timebank_id, debits, credits, minutes, memos)
    return list(ids or [])


async def reverse_many(
    conn: asyncpg.Connection, timebank_id: int, transfer_ids: Sequence[int], reasons: Sequence[str]
) -> list[int]:
    """Reverse each transfer with its reason; the reversals' ids in the same order."""
    rows = await conn.fetch(_REVERSE_MANY, timebank_id, transfer_ids, reasons)
    return [row[0] for row in rows]
