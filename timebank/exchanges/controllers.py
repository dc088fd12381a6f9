"""Exchanges over JSON: log, list, read, and the decisions of DESIGN.md §2."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, TypeAlias

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from pydantic import Discriminator, RootModel, Tag

from timebank.deps import AccessDep, CredentialsDep
from timebank.exchanges.schemas import (
    BulkApprove,
    BulkApproveResult,
    DecisionRequest,
    ExchangeCreate,
    ExchangeDetail,
    ExchangeFilters,
    ExchangePage,
    ExchangeState,
    GroupSessionCreate,
    GroupSessionDetail,
)
from timebank.exchanges.service import Exchanges
from timebank.openapi import MAX_ID, problems

ExchangesDep: TypeAlias = NamedDependency[Exchanges]
ExchangeId: TypeAlias = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
IdempotencyKeyHeader: TypeAlias = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description="any unique string (e.g. a UUID); a retry with the same key and body "
        "returns the first answer and logs nothing new",
    ),
]

_DECISION_PROBLEMS = problems(400, 401, 403, 404, 409, 422, 503)


# The forms a logged body takes, by the names pydantic gives them in an error's location.
LOGGED_FORMS = ("exchange", "group")


def _form(body: Any) -> str:
    """Which form a logged body takes: a group session when it has ``legs``."""
    return "group" if isinstance(body, dict) and "legs" in body else "exchange"


class LoggedBody(
    RootModel[
        Annotated[
            Annotated[ExchangeCreate, Tag("exchange")]
            | Annotated[GroupSessionCreate, Tag("group")],
            Discriminator(_form),
        ]
    ]
):
    """One exchange (``giver_id``, ``receiver_id``, ``minutes``) or a group session
    (``legs``)."""


def _decision(action: str, summary: str, description: str) -> HTTPRouteHandler:
    """The route of one decision: ``POST …/{exchange_id}/{action}`` with an optional reason."""

    async def decide(
        self: Controller,
        access: AccessDep,
        exchanges: ExchangesDep,
        exchange_id: ExchangeId,
        data: JSONBody[DecisionRequest | None] = None,
    ) -> ExchangeDetail | GroupSessionDetail:
        return await exchanges.decide(
            access, exchange_id, action, data.reason if data is not None else None
        )

    decide.__name__ = decide.__qualname__ = action
    decide.__doc__ = description
    return post(
        f"/{{exchange_id:int}}/{action}",
        summary=summary,
        status_code=HTTP_200_OK,
        responses=_DECISION_PROBLEMS,
    )(decide)


class ExchangeController(Controller):
    path = "/api/v1/timebanks/{slug:str}/exchanges"
    tags = ["exchanges"]

    @post(
        "/",
        summary="Log an exchange of time",
        status_code=HTTP_201_CREATED,
        responses=problems(400, 401, 403, 404, 409, 422, 503),
    )
    async def log_exchange(
        self,
        credentials: CredentialsDep,
        state: State,
        data: JSONBody[LoggedBody],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[ExchangeDetail | GroupSessionDetail]:
        """Log an exchange of time, as its giver or receiver, or as a coordinator for either;
        or a group session (``legs``: one host and 1 to 200 attendees, each leg with its
        minutes), as its host or as a coordinator.

        Its minutes are reserved on both accounts until it is approved, rejected or
        cancelled; a session's legs are reserved, approved and reversed together, or refused
        together, naming the attendee at fault. Send an ``Idempotency-Key`` so that a retried
        tap logs it only once."""
        body = data.root
        if isinstance(body, GroupSessionCreate):
            auth = state.auth
            access = credentials.access(
                await auth.caller_in(credentials.token_hash, credentials.slug)
            )
            session = await state.exchanges.log_group(access, body, idempotency_key)
            return Response(
                session.session,
                status_code=HTTP_201_CREATED,
                headers={"Idempotent-Replayed": "true" if session.replayed else "false"},
            )
        # The busiest route: the caller is looked up in the statement that reads what logging
        # needs, not in one of its own (``Credentials.access`` refuses as ``access`` would, but
        # after the body's validation), so the service comes from the state rather than from
        # the ``exchanges`` dependency, which waits for ``access``.
        exchanges: Exchanges = state.exchanges
        logged = await exchanges.log_as(credentials, body, idempotency_key)
        return Response(
            logged.exchange,
            status_code=HTTP_201_CREATED,
            headers={"Idempotent-Replayed": "true" if logged.replayed else "false"},
        )

    @get("/", summary="List exchanges", responses=problems(400, 401, 403, 404, 422))
    async def list_exchanges(
        self,
        access: AccessDep,
        exchanges: ExchangesDep,
        exchange_state: Annotated[ExchangeState | None, QueryParameter(name="state")] = None,
        participant_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)] = None,
        date_from: Annotated[
            date | None, QueryParameter(name="from", description="first service date")
        ] = None,
        date_to: Annotated[
            date | None, QueryParameter(name="to", description="last service date")
        ] = None,
        after_id: Annotated[int | None, QueryParameter(ge=0, le=MAX_ID)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> ExchangePage:
        """Exchanges of the timebank, oldest first; members see their own only."""
        filters = ExchangeFilters(
            exchange_state, participant_id, date_from, date_to, after_id, limit
        )
        return await exchanges.list(access, filters)

    @post(
        "/approve",
        summary="Approve many exchanges",
        status_code=HTTP_200_OK,
        responses=problems(400, 401, 403, 404, 422),
    )
    async def approve_many(
        self, access: AccessDep, exchanges: ExchangesDep, data: JSONBody[BulkApprove]
    ) -> BulkApproveResult:
        """Approve many exchanges (coordinators); each succeeds or fails on its own."""
        return await exchanges.approve_many(access, data.ids)

    @get(
        "/{exchange_id:int}",
        summary="One exchange and its decisions",
        responses=problems(400, 401, 403, 404, 422),
    )
    async def get_exchange(
        self, access: AccessDep, exchanges: ExchangesDep, exchange_id: ExchangeId
    ) -> ExchangeDetail | GroupSessionDetail:
        """One exchange with every decision taken on it: who, when, on whose behalf, why; or
        one group session with its legs."""
        return await exchanges.get(access, exchange_id)

    confirm = _decision(
        "confirm",
        "Confirm an exchange",
        "Confirm an exchange the other party logged; it then awaits approval.",
    )
    dispute = _decision(
        "dispute",
        "Dispute an exchange",
        "Dispute an exchange the other party logged, saying why; a coordinator decides.",
    )
    approve = _decision(
        "approve",
        "Approve an exchange",
        "Approve an exchange (coordinators): its minutes move between the two accounts.",
    )
    reject = _decision(
        "reject",
        "Reject an exchange",
        "Reject an exchange (coordinators): its reserved minutes are released.",
    )
    cancel = _decision(
        "cancel",
        "Cancel an exchange",
        "Cancel an exchange not yet approved (whoever logged it, or a coordinator).",
    )
    reverse = _decision(
        "reverse",
        "Reverse an exchange",
        "Reverse an approved exchange, with a reason (coordinators): the minutes move back.",
    )


ROUTES: list = [ExchangeController]
