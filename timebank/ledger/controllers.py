"""Balances, statements and the ledger audit over JSON."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from timebank.deps import AccessDep
from timebank.ledger.pot_schemas import GivenReceivedPublic
from timebank.ledger.reader import LedgerReader
from timebank.ledger.schemas import (
    AuditPublic,
    BalancePublic,
    FlaggedAccountPublic,
    LimitChangePublic,
    LimitsUpdate,
    StatementPublic,
)
from timebank.openapi import MAX_ID, ParticipantId, problems

LedgerReaderDep: TypeAlias = NamedDependency[LedgerReader]


class LedgerController(Controller):
    path = "/api/v1/timebanks/{slug:str}"
    tags = ["ledger"]

    @get(
        "/participants/{participant_id:int}/balance",
        summary="A participant's balance",
        responses=problems(400, 401, 403, 404, 422),
    )
    async def balance(
        self, access: AccessDep, ledger_reader: LedgerReaderDep, participant_id: ParticipantId
    ) -> BalancePublic | GivenReceivedPublic:
        """A participant's balance: posted, pending in and out, limits, available to spend.

        Members see their own; coordinators and admins anyone's in the timebank. Where the
        timebank shows members their balance as hours given and received
        (``balance_display``), a member sees those (``display: given_received``) and no net
        figure."""
        return await ledger_reader.balance(access, participant_id)

    @get(
        "/participants/{participant_id:int}/statement",
        summary="A participant's statement",
        responses=problems(400, 401, 403, 404, 422),
    )
    async def statement(
        self,
        access: AccessDep,
        ledger_reader: LedgerReaderDep,
        participant_id: ParticipantId,
        before_version: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> StatementPublic:
        """A participant's statement, newest first, with the running balance after each line.

        Members see their own; coordinators and admins anyone's in the timebank."""
        return await ledger_reader.statement(
            access, participant_id, before_version=before_version, limit=limit
        )

    @put(
        "/participants/{participant_id:int}/limits",
        summary="Change one account's limits",
        responses=problems(400, 401, 403, 404, 409, 422),
    )
    async def set_limits(
        self,
        access: AccessDep,
        ledger_reader: LedgerReaderDep,
        participant_id: ParticipantId,
        data: JSONBody[LimitsUpdate],
    ) -> LimitChangePublic:
        """Set a participant's floor and ceiling, with a reason (coordinators and admins, not
        for their own account). Recorded: who, when, from, to, why. Refused (409) when the new
        limits would not hold the account's balance and pending exchanges."""
        return await ledger_reader.set_limits(access, participant_id, data)

    @get(
        "/ledger/flags",
        summary="Accounts a reversal left outside their limits",
        responses=problems(401, 403, 404),
    )
    async def flags(
        self, access: AccessDep, ledger_reader: LedgerReaderDep
    ) -> list[FlaggedAccountPublic]:
        """Accounts a reversal took below their floor or above their ceiling (coordinators and
        admins). Such an account takes nothing that moves it further out; the flag clears once
        it is back within its limits (or its limits are changed to hold it)."""
        return await ledger_reader.flags(access)

    @get("/ledger/verify", summary="Audit the ledger", responses=problems(401, 403, 404))
    async def verify(self, access: AccessDep, ledger_reader: LedgerReaderDep) -> AuditPublic:
        """Audit this timebank's ledger: every balance re-derived from its postings
        (coordinators and admins)."""
        return await ledger_reader.verify(access)


ROUTES: list = [LedgerController]
