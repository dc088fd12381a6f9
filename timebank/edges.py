"""What the service refuses before any handler reads a request, the same way on every route,
API and pages alike: a problem, never a 500.

- A NUL byte anywhere in the path, the query or a header (``RequestGuard``, before routing):
  no name, token or value of the service can hold one (PostgreSQL text cannot), and file
  systems and C libraries cut strings at it.
- A body larger than ``MAX_BODY_BYTES`` (Litestar's ``request_max_body_size``: 413), or not
  all sent within ``BODY_SECONDS`` (408), so a slow sender cannot hold a worker's connection.
- A JSON body nested deeper than ``MAX_JSON_DEPTH``, or holding a NUL in any string or key,
  and a form with a NUL in a field (``CheckedRequest``).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from litestar import Request
from litestar.datastructures import FormMultiDict
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from timebank.errors import TimebankError, ValidationFailed

# The largest body the service reads; its own largest requests are a few kilobytes.
MAX_BODY_BYTES = 64 * 1024
# Arrays and objects within each other; the service's own bodies nest three deep at most.
MAX_JSON_DEPTH = 32
# A whole body must arrive within this many seconds of the handler starting to read it.
BODY_SECONDS = 30.0

NUL_DETAIL = "a NUL character (U+0000) is not allowed in a request"
_NUL_IN_QUERY = re.compile(rb"\x00|%00")


class RequestGuard:
    """An ASGI wrapper, placed before routing: refuses a request with a NUL byte in its path,
    query or headers (400 problem), and gives up on a body that is not sent in time (408)."""

    def __init__(self, app: ASGIApp, *, body_seconds: float = BODY_SECONDS) -> None:
        self._app = app
        self._body_seconds = body_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if _has_nul(scope):
            await _refuse(scope, send, TimebankError(NUL_DETAIL))
            return
        await self._app(scope, _with_deadline(receive, self._body_seconds), send)


def _has_nul(scope: Scope) -> bool:
    return (
        "\x00" in scope["path"]
        or _NUL_IN_QUERY.search(scope.get("query_string", b"")) is not None
        or any(b"\x00" in name or b"\x00" in value for name, value in scope["headers"])
    )


async def _refuse(scope: Scope, send: Send, error: TimebankError) -> None:
    body = json.dumps(error.problem()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _with_deadline(receive: Receive, seconds: float) -> Receive:
    """``receive``, failing with a 408 if the body is not complete ``seconds`` after it was
    first asked for; once the body is complete, ``receive`` as it is (a disconnect is then
    awaited for as long as the answer takes)."""
    deadline: float | None = None
    complete = False

    async def bounded() -> ReceiveMessage:
        nonlocal deadline, complete
        if complete:
            return await receive()
        if deadline is None:
            deadline = time.monotonic() + seconds
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0)):
                message = await receive()
        except TimeoutError:
            raise HTTPException(
                status_code=408, detail="the request body was not sent in time"
            ) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            complete = True
        return message

    return bounded


class CheckedRequest(Request):
    """The app's request class: a JSON body nested too deep is refused (400), and a JSON body
    or form holding a NUL (422), before any handler or model sees them."""

    async def json(self) -> Any:
        try:
            value = await super().json()
        except RecursionError:  # msgspec stops at the interpreter's recursion limit
            raise _too_deep() from None
        _check_json(value)
        return value

    async def form(self) -> FormMultiDict:
        form = await super().form()
        for key, value in form.multi_items():
            if "\x00" in key or (isinstance(value, str) and "\x00" in value):
                raise ValidationFailed(NUL_DETAIL, field=key.replace("\x00", ""))
        return form


def _too_deep() -> TimebankError:
    return TimebankError(f"the JSON body nests more than {MAX_JSON_DEPTH} levels deep")


def _check_json(value: Any) -> None:
    """Refuses nesting deeper than ``MAX_JSON_DEPTH`` and a NUL in any string or key (naming
    where it is, as a dotted path); walks without recursion, so its cost is bounded by the
    body's size."""
    pending: list[tuple[Any, int, str]] = [(value, 0, "")]
    while pending:
        item, depth, where = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValidationFailed(NUL_DETAIL, field=where or "body")
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise _too_deep()
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                if isinstance(key, str) and "\x00" in key:
                    raise ValidationFailed(NUL_DETAIL, field=where or "body")
                pending.append((child, depth + 1, f"{where}.{key}" if where else str(key)))
