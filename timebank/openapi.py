"""OpenAPI pieces shared by every controller: the problem-details body (RFC 9457); and the
``/schema`` router with its docs page."""

from __future__ import annotations

import html
from typing import Annotated, Any, TypeAlias

from litestar import Request, Router
from litestar.datastructures import ResponseHeader
from litestar.openapi import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin
from litestar.params import PathParameter
from pydantic import BaseModel, ConfigDict

PROBLEM_JSON = "application/problem+json"

MAX_ID = 2**63 - 1  # ids are PostgreSQL bigints: anything larger cannot name a row
ParticipantId: TypeAlias = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
ExchangeId: TypeAlias = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
TokenId: TypeAlias = Annotated[int, PathParameter(ge=1, le=MAX_ID)]

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


# The browsable docs page: RapiDoc, vendored and pinned (timebank/web/static/vendor/…/README.md),
# served by the service itself, under a policy that lets nothing else run or load.
RAPIDOC = "rapidoc-9.3.8"
DOCS_SCRIPT = f"/static/vendor/{RAPIDOC}/rapidoc-min.js"
DOCS_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        # RapiDoc styles its elements through style attributes; no script comes of them.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
DOCS_HEADERS = {
    "content-security-policy": DOCS_CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


class DocsPage(OpenAPIRenderPlugin):
    """``/schema``: the OpenAPI document in RapiDoc, loaded from this service's own static files
    (no other origin, no inline script); the document itself stays at ``/schema/openapi.json``."""

    def __init__(self) -> None:
        super().__init__(path="/")

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        spec_url = html.escape(self.get_openapi_json_route(request))
        title = html.escape(str(openapi_schema["info"]["title"]))
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} API</title>
<link rel="icon" href="data:,">
<script src="{DOCS_SCRIPT}"></script>
</head>
<body>
<rapi-doc spec-url="{spec_url}" render-style="read" show-header="false"
  allow-spec-url-load="false" allow-spec-file-load="false"
  load-fonts="false" regular-font="system-ui, sans-serif" mono-font="ui-monospace, monospace">
</rapi-doc>
<noscript>The API docs need JavaScript; the document itself is at {spec_url}.</noscript>
</body>
</html>
""".encode()


def docs_router(*, api_docs: bool) -> tuple[Router, list[OpenAPIRenderPlugin]]:
    """The router of ``/schema`` and what it serves: the docs page (when ``api_docs``) and the
    JSON document, every answer with the headers above."""
    router = Router(
        path="/schema",
        route_handlers=[],
        include_in_schema=False,
        response_headers=[ResponseHeader(name=k, value=v) for k, v in DOCS_HEADERS.items()],
    )
    plugins: list[OpenAPIRenderPlugin] = [DocsPage()] if api_docs else []
    return router, [*plugins, JsonRenderPlugin()]
