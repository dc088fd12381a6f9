"""The ledger service: every write in one short transaction, retried invisibly on deadlock or
serialization failure, with database refusals turned into typed errors (``timebank.db``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.db.transactions import run_in_raw_statements
from timebank.errors import ValidationFailed
from timebank.ledger import repository
from timebank.ledger.schemas import (
    AccountBalance,
    BatchResult,
    DirectKind,
    IdempotencyKey,
    PendingResult,
    PostResult,
    StatementLine,
    StatementPage,
    TransferRequest,
)

T = TypeVar("T")


class Ledger:
    """Post, reserve, post or void a reservation, reverse; read balances and statements.

    Every write is one call of a PL/pgSQL function, which is its own transaction (deferred
    checks run at its commit), sent on the plain asyncpg connection: one round trip. Every
    write takes an optional idempotency key: the same key with the same request returns the
    original result (``replayed=True``); the same key with a different request is refused.
    """

    def __init__(self, engine: AsyncEngine, *, max_retries: int = 8) -> None:
        self._engine = engine
        self._max_retries = max_retries

    async def _run(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        return await run_in_raw_statements(self._engine, work, max_retries=self._max_retries)

    async def post_transfer(
        self,
        timebank_id: int,
        debit_account_id: int,
        credit_account_id: int,
        minutes: int,
        *,
        kind: DirectKind = "exchange",
        memo: str | None = None,
        key: IdempotencyKey | None = None,
    ) -> PostResult:
        """Post one transfer at once: ``minutes`` from the debit to the credit account."""

        async def work(conn: asyncpg.Connection) -> PostResult:
            transfer, replayed = await repository.post_transfer(
                conn,
                timebank_id=timebank_id,
                debit_account_id=debit_account_id,
                credit_account_id=credit_account_id,
                minutes=minutes,
                kind=kind,
                memo=memo,
                key=key,
            )
            return PostResult(transfer=transfer, replayed=replayed)

        return await self._run(work)

    async def post_batch(
        self,
        timebank_id: int,
        transfers: Sequence[TransferRequest],
        *,
        kind: DirectKind = "exchange",
        key: IdempotencyKey | None = None,
    ) -> BatchResult:
        """Post many transfers in one transaction, all or none; each account is locked and
        updated once, and no account passes a limit at any step of the batch."""

        async def work(conn: asyncpg.Connection) -> BatchResult:
            posted, replayed = await repository.post_batch(
                conn, timebank_id=timebank_id, transfers=transfers, kind=kind, key=key
            )
            return BatchResult(transfers=posted, replayed=replayed)

        return await self._run(work)

    async def reserve(
        self,
        timebank_id: int,
        debit_account_id: int,
        credit_account_id: int,
        minutes: int,
        *,
        kind: DirectKind = "exchange",
        memo: str | None = None,
        key: IdempotencyKey | None = None,
    ) -> PendingResult:
        """Reserve minutes for a pending exchange; they count against both accounts' limits."""

        async def work(conn: asyncpg.Connection) -> PendingResult:
            pending, replayed = await repository.reserve(
                conn,
                timebank_id=timebank_id,
                debit_account_id=debit_account_id,
                credit_account_id=credit_account_id,
                minutes=minutes,
                kind=kind,
                memo=memo,
                key=key,
            )
            return PendingResult(pending=pending, replayed=replayed)

        return await self._run(work)

    async def post_pending(
        self, timebank_id: int, pending_id: int, *, key: IdempotencyKey | None = None
    ) -> PostResult:
        """Post a reservation; it was checked against the limits when it was made."""

        async def work(conn: asyncpg.Connection) -> PostResult:
            transfer, replayed = await repository.post_pending(
                conn, timebank_id=timebank_id, pending_id=pending_id, key=key
            )
            return PostResult(transfer=transfer, replayed=replayed)

        return await self._run(work)

    async def void_pending(
        self, timebank_id: int, pending_id: int, *, key: IdempotencyKey | None = None
    ) -> PendingResult:
        """Release a reservation without posting it."""

        async def work(conn: asyncpg.Connection) -> PendingResult:
            pending, replayed = await repository.void_pending(
                conn, timebank_id=timebank_id, pending_id=pending_id, key=key
            )
            return PendingResult(pending=pending, replayed=replayed)

        return await self._run(work)

    async def reverse(
        self,
        timebank_id: int,
        transfer_id: int,
        reason: str,
        *,
        key: IdempotencyKey | None = None,
    ) -> PostResult:
        """Reverse a posted transfer, once, with a reason: the same minutes move back."""

        async def work(conn: asyncpg.Connection) -> PostResult:
            transfer, replayed = await repository.reverse(
                conn, timebank_id=timebank_id, transfer_id=transfer_id, reason=reason, key=key
            )
            return PostResult(transfer=transfer, replayed=replayed)

        return await self._run(work)

    async def balance(self, timebank_id: int, account_id: int) -> AccountBalance:
        """Posted balance, pending in and out, and limits of one account."""
        return await self._run(lambda conn: repository.get_balance(conn, timebank_id, account_id))

    async def statement(
        self,
        timebank_id: int,
        account_id: int,
        *,
        before_version: int | None = None,
        limit: int = 50,
    ) -> StatementPage:
        """An account's postings, newest first, each with the running balance after it."""
        if not 1 <= limit <= 500:
            raise ValidationFailed("limit must be between 1 and 500")

        async def work(conn: asyncpg.Connection) -> list[StatementLine]:
            await repository.get_balance(conn, timebank_id, account_id)  # 404 if not here
            return await repository.statement_lines(
                conn, timebank_id, account_id, before_version=before_version, limit=limit
            )

        lines = await self._run(work)
        next_before = lines[-1].account_version if len(lines) == limit else None
        if next_before == 1:
            next_before = None
        return StatementPage(lines=lines, next_before_version=next_before)
