"""Around every HTTP request: its id (the caller's ``X-Request-ID`` when it is sensible, a new
one otherwise, returned in the response either way), one access-log line, and the request
metrics. It wraps the whole application, routing and error handlers included, so that a 404
for an unknown path or a 503 while the database is away is logged and counted too."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import Any, cast

from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from timebank.errors import RETRY_AFTER_SECONDS, ServiceUnavailable
from timebank.ops import metrics
from timebank.ops.logs import ACCESS_LOGGER, request_id

REQUEST_ID_HEADER = b"x-request-id"
HSTS = b"max-age=31536000"
# What a caller's id may look like: a UUID, a trace id, a load balancer's id; nothing that
# could forge a log line or bloat one.
_SENSIBLE_ID = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")
UNMATCHED_ROUTE = "<unmatched>"

_access = logging.getLogger(ACCESS_LOGGER)


class RequestMiddleware:
    def __init__(self, app: ASGIApp, *, access_log: bool = True, https_only: bool = False) -> None:
        self._app = app
        self._access_log = access_log
        # Served over HTTPS (TIMEBANK_COOKIE_SECURE): browsers are told to come back over HTTPS
        # only, for a year (they ignore the header on a plain-HTTP answer).
        self._fixed_headers = [(b"strict-transport-security", HSTS)] if https_only else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = _request_id(scope)
        token = request_id.set(rid)
        extra = [(REQUEST_ID_HEADER, rid.encode()), *self._fixed_headers]
        status = 500  # what the server answers if the app fails before it starts a response
        started_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                headers = [*message.get("headers", ()), *extra]
                message["headers"] = headers + _unsniffable_and_unstored(headers)
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # The server is stopping and the grace period for requests in flight is over. A
            # write the database was already running may still commit, whole, or not at all:
            # the honest answer is "unknown, retry" (503 with Retry-After; a retry with the
            # same Idempotency-Key returns what was recorded), not the server's bare 500.
            if started_response:
                raise
            status = 503
            for message in _cut_off(scope, _has_idempotency_key(scope)):
                await send_with_id(message)
        finally:
            duration = time.perf_counter() - started
            route = scope.get("path_template") or UNMATCHED_ROUTE
            method = cast("HTTPScope", scope)["method"]
            metrics.REQUESTS.labels(route=route, method=method, status=str(status)).inc()
            metrics.LATENCY.labels(route=route, method=method).observe(duration)
            if self._access_log:
                _access.info(
                    "request",
                    extra=_access_fields(scope, method, status, duration),
                )
            request_id.reset(token)


def _unsniffable_and_unstored(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Every answer: the browser takes its content type as given (no sniffing a JSON answer
    into a script or page), and nothing is cached unless the answer says how (personal
    figures must not stay in a shared or back-button cache)."""
    names = {name.lower() for name, _ in headers}
    added = []
    if b"x-content-type-options" not in names:
        added.append((b"x-content-type-options", b"nosniff"))
    if b"cache-control" not in names:
        added.append((b"cache-control", b"no-store"))
    return added


_CUT_OFF_DETAIL = (
    "the service stopped before it could answer; the request may or may not have taken effect"
)
_WITH_KEY = ": retry it with the same Idempotency-Key, which returns what was recorded"
_WITHOUT_KEY = ": look before you send it again (an Idempotency-Key makes a retry safe)"


def _has_idempotency_key(scope: Scope) -> bool:
    return any(name == b"idempotency-key" for name, _ in scope["headers"])


def _cut_off(scope: Scope, keyed: bool) -> tuple[Message, Message]:
    problem = ServiceUnavailable(
        _CUT_OFF_DETAIL + (_WITH_KEY if keyed else _WITHOUT_KEY),
        retry_after=RETRY_AFTER_SECONDS,
    )
    body = json.dumps(problem.problem(instance=scope["path"])).encode()
    start: Message = {
        "type": "http.response.start",
        "status": problem.status_code,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if _SENSIBLE_ID.fullmatch(value):
                return value.decode()
            break
    return uuid.uuid4().hex


def _access_fields(scope: Scope, method: str, status: int, duration: float) -> dict[str, Any]:
    client = scope.get("client")
    return {
        "method": method,
        "path": scope["path"],
        "route": scope.get("path_template"),
        "status": status,
        "duration_ms": round(duration * 1000, 2),
        "client": client[0] if client else None,
    }
