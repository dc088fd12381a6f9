"""Balances, statements and the ledger audit for the people allowed to see them: a member
their own, coordinators and admins anyone's in the timebank, funders nobody's."""

from __future__ import annotations

import functools
from dataclasses import asdict
from typing import Unpack

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.auth.schemas import TimebankAccess
from timebank.db.statements import Connection
from timebank.db.transactions import raw_connection, run_in_raw_statements
from timebank.errors import Forbidden
from timebank.ledger import accounts, repository
from timebank.ledger.audit import audit
from timebank.ledger.pot_schemas import GivenReceivedPublic
from timebank.ledger.schemas import (
    AuditPublic,
    BalancePublic,
    FlaggedAccountPublic,
    LimitChangePublic,
    LimitsUpdate,
    StatementAsk,
    StatementLinePublic,
    StatementPublic,
)
from timebank.ledger.service import Ledger


class LedgerReader:
    """A participant's balance and statement, and the ledger audit, for those allowed: a
    member their own, coordinators and admins anyone's in the timebank, funders nobody's."""

    def __init__(self, engine: AsyncEngine, ledger: Ledger) -> None:
        self._engine = engine
        self._ledger = ledger

    @staticmethod
    def _require_reader(access: TimebankAccess, participant_id: int) -> None:
        if not access.can_manage:
            if access.party_id is None:
                raise Forbidden("balances are for members and coordinators of this timebank")
            if participant_id != access.party_id:
                raise Forbidden("members see their own balance and statement only")

    async def _account(self, access: TimebankAccess, participant_id: int) -> int:
        self._require_reader(access, participant_id)
        async with raw_connection(self._engine) as conn:  # one statement, no SQLAlchemy
            return await accounts.account_of(conn, access.timebank_id, participant_id)

    async def balance(
        self, access: TimebankAccess, participant_id: int
    ) -> BalancePublic | GivenReceivedPublic:
        """Posted balance, pending in and out, limits, and what is left to spend; or, for a
        member of a timebank that shows balances as given and received, the minutes of the
        exchanges they gave and received with no net figure (coordinators always see the
        balance)."""
        self._require_reader(access, participant_id)
        # The reads on one pooled connection: a request that waits for a connection waits once.
        async with raw_connection(self._engine) as conn:
            account_id, display = await accounts.account_and_display(
                conn, access.timebank_id, participant_id
            )
            balance = await accounts.get_balance(conn, access.timebank_id, account_id)
            if not access.can_manage and display == "given_received":
                given, received = await accounts.given_received(
                    conn, access.timebank_id, account_id
                )
                return GivenReceivedPublic(
                    participant_id=participant_id,
                    account_id=account_id,
                    given_minutes=given,
                    received_minutes=received,
                    pending_in_minutes=balance.pending_in_minutes,
                    pending_out_minutes=balance.pending_out_minutes,
                )
        floor = balance.floor_minutes or 0
        return BalancePublic(
            participant_id=participant_id,
            account_id=account_id,
            balance_minutes=balance.balance_minutes,
            pending_in_minutes=balance.pending_in_minutes,
            pending_out_minutes=balance.pending_out_minutes,
            floor_minutes=floor,
            ceiling_minutes=balance.ceiling_minutes or 0,
            available_minutes=balance.balance_minutes - balance.pending_out_minutes - floor,
            flagged_by_reversal_id=balance.flagged_by_reversal_id,
        )

    async def set_limits(
        self, access: TimebankAccess, participant_id: int, data: LimitsUpdate
    ) -> LimitChangePublic:
        """Change one participant's floor and ceiling (coordinators and admins, never for
        their own account), recorded; refused (409) when the new limits would not hold the
        account's balance and reservations."""
        if not access.can_manage:
            raise Forbidden("only a coordinator may change an account's limits")
        if access.participant_id == participant_id:
            raise Forbidden("someone else must change the limits of your own account")

        change = functools.partial(
            _set_limits, access=access, participant_id=participant_id, data=data
        )
        return await run_in_raw_statements(self._engine, change)

    async def flags(self, access: TimebankAccess) -> list[FlaggedAccountPublic]:
        """Accounts a reversal left outside their limits (coordinators and admins)."""
        if not access.can_manage:
            raise Forbidden("only a coordinator may see flagged accounts")
        async with raw_connection(self._engine) as conn:
            rows = await accounts.flagged_accounts(conn, access.timebank_id)
        return [FlaggedAccountPublic.model_validate(dict(row)) for row in rows]

    async def statement(
        self, access: TimebankAccess, participant_id: int, **ask: Unpack[StatementAsk]
    ) -> StatementPublic:
        """Postings newest first, each with the running balance after it."""
        account_id = await self._account(access, participant_id)
        page = await self._ledger.statement(access.timebank_id, account_id, **ask)
        lines = [StatementLinePublic.model_validate(asdict(line)) for line in page.lines]
        if not access.can_manage and await self._shows_given_received(access):
            lines = [line.model_copy(update={"balance_after": None}) for line in lines]
        return StatementPublic(
            participant_id=participant_id,
            account_id=account_id,
            lines=lines,
            next_before_version=page.next_before_version,
        )

    async def _shows_given_received(self, access: TimebankAccess) -> bool:
        """Whether the timebank shows members hours given and received, not a balance."""
        async with raw_connection(self._engine) as conn:
            return await accounts.balance_display(conn, access.timebank_id) == "given_received"

    async def verify(self, access: TimebankAccess) -> AuditPublic:
        """The ledger audit of this timebank (coordinators and admins)."""
        if not access.can_manage:
            raise Forbidden("only a coordinator may audit the ledger")
        async with self._engine.connect() as conn:
            report = await audit(conn, access.timebank_slug)
        return AuditPublic.model_validate(report.as_dict())


async def _set_limits(
    conn: Connection, *, access: TimebankAccess, participant_id: int, data: LimitsUpdate
) -> LimitChangePublic:
    account_id = await accounts.account_of(conn, access.timebank_id, participant_id)
    row = await repository.set_limits(
        conn,
        timebank_id=access.timebank_id,
        account_id=account_id,
        floor=data.floor_minutes,
        ceiling=data.ceiling_minutes,
        user_id=access.principal.user_id,
        reason=data.reason,
    )
    return LimitChangePublic.model_validate(dict(row))
