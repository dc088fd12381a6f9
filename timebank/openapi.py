"""OpenAPI pieces shared by every controller: the problem-details body (RFC 9457)."""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

from litestar.openapi import ResponseSpec
from litestar.params import PathParameter
from pydantic import BaseModel, ConfigDict

PROBLEM_JSON = "application/problem+json"

MAX_ID = 2**63 - 1  # ids are PostgreSQL bigints: anything larger cannot name a row
ParticipantId: TypeAlias = Annotated[int, PathParameter(ge=1, le=MAX_ID)]

_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not signed in, or the session or token has ended",
    403: "Signed in, but not allowed",
    404: "Not found (or not visible to the caller)",
    409: "Conflict: a limit, the exchange's state, or an idempotency key reused",
    422: "The request is not valid",
    429: "Too many attempts",
    503: "Temporarily unavailable; retry after the time in Retry-After",
}


class Problem(BaseModel):
    """An error, as RFC 9457 problem details; ``type`` is stable for each kind of error."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """Document the problem responses a route can give."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS.get(status, "Problem"),
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in statuses
    }


def problem_body(**fields: Any) -> dict[str, Any]:
    return Problem(**fields).model_dump(exclude_none=True)
