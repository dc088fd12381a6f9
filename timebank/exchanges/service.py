"""Exchanges of time through their life (DESIGN.md §2): logged, confirmed or disputed, approved
or rejected, cancelled, reversed.

Logging is two statements outside any transaction: one reads, one writes the exchange, its
decision, its ledger movement and its idempotency key (``exchanges.log``). A decision is one
short transaction: the exchange row is locked first (decisions on one exchange take turns),
the ledger moves inside the same transaction, and the decision is recorded with the new state
(``exchanges.decisions``). Refusals come out as typed errors; deadlocks are retried.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.auth.schemas import TimebankAccess
from timebank.db.transactions import run_in_raw_statements, run_in_raw_transaction
from timebank.errors import NotFound, TimebankError
from timebank.exchanges import groups, policy, repository
from timebank.exchanges.decisions import detail, record_fields
from timebank.exchanges.log import Caller, check, log_for, log_for_caller
from timebank.exchanges.schemas import (
    BulkApproveResult,
    BulkError,
    BulkOutcome,
    ExchangeCreate,
    ExchangeDetail,
    ExchangeFilters,
    ExchangePage,
    ExchangePublic,
    ExchangeState,
    GroupLogResult,
    GroupSessionCreate,
    GroupSessionDetail,
    LogResult,
)


class Exchanges:
    """Log exchanges and take decisions on them, for whoever the caller is in the timebank."""

    def __init__(self, engine: AsyncEngine, *, max_retries: int = 8) -> None:
        self._engine = engine
        self._max_retries = max_retries

    # -- logging -------------------------------------------------------------------------------

    async def log(
        self,
        access: TimebankAccess,
        data: ExchangeCreate,
        idempotency_key: str | None = None,
    ) -> LogResult:
        """Log an exchange: reserve its minutes on both accounts, record who logged it, then
        let the timebank's policy move it on. A retry with the same idempotency key and body
        returns the exchange logged the first time, and logs nothing new."""
        check(access, data, idempotency_key)
        logging = functools.partial(log_for, access=access, data=data, key=idempotency_key)
        return await run_in_raw_statements(self._engine, logging, max_retries=self._max_retries)

    async def log_as(
        self, caller: Caller, data: ExchangeCreate, idempotency_key: str | None = None
    ) -> LogResult:
        """``log`` for a caller not yet looked up: who they are in the timebank is read in the
        same statement as what logging reads (one round trip and one pooled connection fewer),
        and the auth layer (``caller.access``) lets them in or refuses them as the access
        dependency would."""
        logging = functools.partial(log_for_caller, caller=caller, data=data, key=idempotency_key)
        return await run_in_raw_statements(self._engine, logging, max_retries=self._max_retries)

    async def log_group(
        self,
        access: TimebankAccess,
        data: GroupSessionCreate,
        idempotency_key: str | None = None,
    ) -> GroupLogResult:
        """Log a group session: every leg reserved (or posted, when the policy approves it at
        once) in one transaction, or none; a refusal names the attendee at fault. A retry
        with the same idempotency key and body returns the session logged the first time."""
        groups.check(access, data, idempotency_key)
        logging = functools.partial(groups.log_group, access=access, data=data, key=idempotency_key)
        return await run_in_raw_transaction(self._engine, logging, max_retries=self._max_retries)

    # -- reading -------------------------------------------------------------------------------

    async def get(
        self, access: TimebankAccess, exchange_id: int
    ) -> ExchangeDetail | GroupSessionDetail:
        """One exchange with its decision history, or one group session with its legs;
        members see only their own."""
        policy.require_exchange_reader(access)
        async with self._engine.connect() as conn:
            exchange = await repository.get_exchange(conn, access.timebank_id, exchange_id)
            if exchange is None:  # a session's id, or nothing: NotFound either way otherwise
                return await groups.group_detail(conn, access, exchange_id)
            policy.require_visible(access, exchange)
            return await detail(conn, access.timebank_id, exchange_id)

    async def list(self, access: TimebankAccess, filters: ExchangeFilters) -> ExchangePage:
        """Exchanges by ascending id, filtered; members see only those they are party to."""
        policy.require_exchange_reader(access)
        party_of = None if access.can_manage else access.party_id
        async with self._engine.connect() as conn:
            rows = await repository.list_exchanges(
                conn, access.timebank_id, filters, party_of=party_of, limit=filters.limit + 1
            )
        page = rows[: filters.limit]
        return ExchangePage(
            items=[ExchangePublic.model_validate(record_fields(row)) for row in page],
            next_after_id=page[-1].id if len(rows) > filters.limit else None,
        )

    # -- decisions -----------------------------------------------------------------------------

    async def decide(
        self, access: TimebankAccess, exchange_id: int, action: str, reason: str | None = None
    ) -> ExchangeDetail | GroupSessionDetail:
        """Take one decision (confirm, dispute, approve, reject, cancel, reverse) on an
        exchange or a group session: who may, from which state, with which effect on the
        ledger."""
        policy.require_may_attempt(access, action)
        deciding = functools.partial(
            groups.decide_any,
            access=access,
            exchange_id=exchange_id,
            action=action,
            reason=policy.clean_reason(action, reason),
        )
        return await run_in_raw_transaction(self._engine, deciding, max_retries=self._max_retries)

    async def approve_many(
        self, access: TimebankAccess, exchange_ids: Sequence[int]
    ) -> BulkApproveResult:
        """Approve each exchange in a transaction of its own: one that cannot be approved is
        reported beside the others and does not hold them back."""
        policy.require_may_attempt(access, "approve")
        results = []
        for exchange_id in exchange_ids:
            try:
                approved = await self.decide(access, exchange_id, "approve")
            except TimebankError as error:
                results.append(
                    BulkOutcome(
                        id=exchange_id,
                        state=await self._state_seen_by(access, exchange_id),
                        error=BulkError(
                            type=error.type_uri, status=error.status_code, detail=error.detail
                        ),
                    )
                )
            else:
                results.append(BulkOutcome(id=exchange_id, state=approved.state))
        return BulkApproveResult(results=results)

    async def _state_seen_by(
        self, access: TimebankAccess, exchange_id: int
    ) -> ExchangeState | None:
        """The state of the exchange (or session) as the caller sees it; None if they do not."""
        try:
            return (await self.get(access, exchange_id)).state
        except NotFound:
            return None
