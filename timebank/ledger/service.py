"""The ledger service: every write in one short transaction, retried invisibly on deadlock or
serialization failure, with database refusals turned into typed errors (``timebank.db``)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Concatenate, ParamSpec, TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.db.transactions import run_in_raw_statements
from timebank.errors import ValidationFailed
from timebank.ledger import accounts, pot, repository
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

P = ParamSpec("P")
T = TypeVar("T")


def door_write(
    step: Callable[Concatenate[asyncpg.Connection, P], Awaitable[T]],
) -> Callable[Concatenate[Ledger, P], Awaitable[T]]:
    """A ``Ledger`` method that is the door's write ``step`` (its arguments, its answer, its
    docstring) without the connection: run by ``Ledger._run``."""

    @functools.wraps(step)
    async def write(ledger: Ledger, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await ledger._run(step, *args, **kwargs)

    return write


class Ledger:
    """Post, reserve, post or void a reservation, reverse; read balances and statements.

    Every write is the door's (``timebank.ledger.repository``) on a plain asyncpg connection:
    one call of a PL/pgSQL function, its own transaction (deferred checks run at its commit),
    one round trip. Every write takes an optional idempotency key: the same key with the same
    request returns the original result (``replayed=True``); the same key with a different
    request is refused.
    """

    def __init__(self, engine: AsyncEngine, *, max_retries: int = 8) -> None:
        self._engine = engine
        self._max_retries = max_retries

    async def _run(
        self,
        step: Callable[Concatenate[asyncpg.Connection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``step`` on a pooled connection, each statement its own transaction, retried."""
        return await run_in_raw_statements(
            self._engine, lambda conn: step(conn, *args, **kwargs), max_retries=self._max_retries
        )

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
        transfer = TransferRequest(debit_account_id, credit_account_id, minutes, memo)
        return await self._run(repository.post_transfer, timebank_id, transfer, kind=kind, key=key)

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
        return await self._run(repository.post_batch, timebank_id, transfers, kind=kind, key=key)

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
        transfer = TransferRequest(debit_account_id, credit_account_id, minutes, memo)
        return await self._run(repository.reserve, timebank_id, transfer, kind=kind, key=key)

    async def post_pending(
        self, timebank_id: int, pending_id: int, *, key: IdempotencyKey | None = None
    ) -> PostResult:
        """Post a reservation; it was checked against the limits when it was made."""
        return await self._run(repository.post_pending, timebank_id, pending_id, key=key)

    async def void_pending(
        self, timebank_id: int, pending_id: int, *, key: IdempotencyKey | None = None
    ) -> PendingResult:
        """Release a reservation without posting it."""
        return await self._run(repository.void_pending, timebank_id, pending_id, key=key)

    async def reverse(
        self,
        timebank_id: int,
        transfer_id: int,
        reason: str,
        *,
        key: IdempotencyKey | None = None,
    ) -> PostResult:
        """Reverse a posted transfer, once, with a reason: the same minutes move back."""
        return await self._run(repository.reverse, timebank_id, transfer_id, reason, key=key)

    gift = door_write(pot.gift)
    set_opening = door_write(pot.set_opening)
    leave = door_write(pot.leave)

    async def balance(self, timebank_id: int, account_id: int) -> AccountBalance:
        """Posted balance, pending in and out, and limits of one account."""
        return await self._run(accounts.get_balance, timebank_id, account_id)

    async def statement(
        self,
        timebank_id: int,
        account_id: int,
        *,
        before_version: int | None = None,
        limit: int = 50,
    ) -> StatementPage:
        """An account's postings, newest first, each with the running balance after it: the
        ``limit`` (1 to 500) postings before ``before_version`` (``StatementAsk``)."""
        if not 1 <= limit <= 500:
            raise ValidationFailed("limit must be between 1 and 500")
        lines = await self._run(_statement, timebank_id, account_id, before_version, limit)
        next_before = lines[-1].account_version if len(lines) == limit else None
        if next_before == 1:
            next_before = None
        return StatementPage(lines=lines, next_before_version=next_before)


async def _statement(
    conn: asyncpg.Connection,
    timebank_id: int,
    account_id: int,
    before_version: int | None,
    limit: int,
) -> list[StatementLine]:
    await accounts.get_balance(conn, timebank_id, account_id)  # 404 if not here
    return await accounts.statement_lines(
        conn, timebank_id, account_id, before_version=before_version, limit=limit
    )
