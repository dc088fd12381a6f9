"""Balances, statements and the ledger audit over JSON; gifts, grants, leaving, opening
balances and the community pot (who may call what is decided by ``timebank.ledger.pot_desk``,
never here)."""

from __future__ import annotations

from typing import Annotated, TypeAlias, TypeVar

from litestar import Controller, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from timebank.deps import AccessDep
from timebank.ledger.pot_desk import PotDesk
from timebank.ledger.pot_schemas import (
    MAX_MOVEMENTS,
    DeparturePublic,
    GiftCreate,
    GiftPublic,
    GivenReceivedPublic,
    LeaveRequest,
    OpeningBalancePublic,
    OpeningBalanceUpdate,
    PotPublic,
)
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
PotDeskDep: TypeAlias = NamedDependency[PotDesk]
IdempotencyKeyHeader: TypeAlias = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="retrying with the same key and body returns the first answer (with "
        "Idempotent-Replayed: true); the same key with another body is refused (409)",
    ),
]
T = TypeVar("T")


def _answer(written: tuple[T, bool], status_code: int) -> Response[T]:
    """The record, with whether it is the answer first given (``Idempotent-Replayed``)."""
    record, replayed = written
    return Response(
        record,
        status_code=status_code,
        headers={"Idempotent-Replayed": "true" if replayed else "false"},
    )


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


class PotController(Controller):
    path = "/api/v1/timebanks/{slug:str}"
    tags = ["gifts and the pot"]

    @post(
        "/gifts",
        summary="Give hours, or grant them from the pot",
        status_code=HTTP_201_CREATED,
        responses=problems(400, 401, 403, 404, 409, 422),
    )
    async def gift(
        self,
        access: AccessDep,
        pot_desk: PotDeskDep,
        data: JSONBody[GiftCreate],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[GiftPublic]:
        """Give minutes from your own account to a member or to the community pot
        (``to_id`` null), posted at once; or, as a coordinator, grant them from the pot
        (``from_id`` null) to a member, with the reason in ``note``.

        Nobody gives from another person's account (403) or grants to themselves; refused
        (409) past the giver's floor, naming it, and to or from someone who has left."""
        return _answer(await pot_desk.gift(access, data, idempotency_key), HTTP_201_CREATED)

    @post(
        "/participants/{participant_id:int}/leave",
        summary="Record a participant leaving",
        status_code=HTTP_201_CREATED,
        responses=problems(400, 401, 403, 404, 409, 422),
    )
    async def leave(
        self,
        access: AccessDep,
        pot_desk: PotDeskDep,
        participant_id: ParticipantId,
        data: JSONBody[LeaveRequest],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[DeparturePublic]:
        """A participant leaves (recorded by themselves or by a coordinator): their balance
        goes to the member ``balance_to`` names or to the pot (null; a debt always to the
        pot), their account is closed and their history stays. Refused (409) while an
        exchange of theirs is pending."""
        written = await pot_desk.leave(access, participant_id, data, idempotency_key)
        return _answer(written, HTTP_201_CREATED)

    @put(
        "/participants/{participant_id:int}/opening-balance",
        summary="Set a participant's opening balance",
        status_code=HTTP_200_OK,
        responses=problems(400, 401, 403, 404, 409, 422),
    )
    async def set_opening(
        self,
        access: AccessDep,
        pot_desk: PotDeskDep,
        participant_id: ParticipantId,
        data: JSONBody[OpeningBalanceUpdate],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[OpeningBalancePublic]:
        """Set a participant's starting balance against the community pot (either sign),
        once: the same value again changes nothing (``Idempotent-Replayed: true``), another
        is refused (409). Coordinators and admins, never for their own participant."""
        written = await pot_desk.set_opening(access, participant_id, data, idempotency_key)
        return _answer(written, HTTP_200_OK)

    @get("/pot", summary="The community pot", responses=problems(400, 401, 403, 404, 422))
    async def pot(
        self,
        access: AccessDep,
        pot_desk: PotDeskDep,
        before_version: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_MOVEMENTS)] = 50,
    ) -> PotPublic:
        """The community pot's balance and its movements, newest first, each with the
        participant on the other side and a gift's note or a grant's reason (coordinators and
        admins)."""
        return await pot_desk.pot(access, before_version=before_version, limit=limit)


ROUTES: list = [LedgerController, PotController]
