"""A minimal HTTP/1.1 keep-alive client for the load benchmark's simulated clients.

The load generator shares the machine with the service and PostgreSQL, so every millisecond
of CPU it spends per request is taken from what it measures; this client does only what the
benchmark needs: one connection, one request at a time, a JSON or empty body, and a response
framed by ``Content-Length``. Anything else (chunked or unframed bodies, a malformed head, a
closed connection, a timeout) is an :class:`HttpError` and closes the connection; the next
request opens a new one. So does ``Connection: close`` from the server, after its body.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

MAX_HEAD_BYTES = 64 * 1024
IDLE_REOPEN_SECONDS = 4.0  # below the server's keep-alive timeout


class HttpError(Exception):
    """The request got no usable response: the connection failed or the answer could not be
    read. The connection is closed."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection to ``host:port``, opened on first use and again after any
    failure. Not for concurrent use: one simulated client, one request at a time."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._host_header = f"Host: {host}:{port}\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._last_used = 0.0

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        json_body: Any = None,
    ) -> Response:
        """Send one request (``json_body`` as JSON unless it is None) and read its response."""
        head = [f"{method} {path} HTTP/1.1\r\n", self._host_header]
        head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        body = b""
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            head.append(f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n")
        head.append("\r\n")
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange("".join(head).encode() + body)
        except HttpError:
            self.close()
            raise
        except (OSError, EOFError, TimeoutError, asyncio.LimitOverrunError) as error:
            # EOFError covers IncompleteReadError: the server closed the connection mid-answer.
            self.close()
            raise HttpError(f"{type(error).__name__} {error}") from error

    async def _exchange(self, request: bytes) -> Response:
        if self._writer is not None and time.monotonic() - self._last_used > IDLE_REOPEN_SECONDS:
            # The server closes keep-alive connections idle for a while (uvicorn: 5 s); a
            # request sent just as it does would fail without the server ever seeing it.
            self.close()
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, limit=MAX_HEAD_BYTES
            )
        reader, writer = self._reader, self._writer
        assert reader is not None
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status, length, keep_alive = _parse_head(head)
        body = await reader.readexactly(length) if length else b""
        self._last_used = time.monotonic()
        if not keep_alive:
            self.close()
        return Response(status, body)


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    """Status, body length and whether the connection stays open, from a response head."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise HttpError(f"malformed status line {lines[0][:80]!r}")
    status = int(code)
    length: int | None = None
    keep_alive = version == "HTTP/1.1"
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise HttpError(f"malformed header line {line[:80]!r}")
        name = name.strip().lower()
        if name == "content-length":
            value = value.strip()
            if not value.isdigit():
                raise HttpError(f"malformed Content-Length {value[:20]!r}")
            length = int(value)
        elif name == "transfer-encoding":
            raise HttpError(f"unsupported Transfer-Encoding {value.strip()[:40]!r}")
        elif name == "connection":
            value = value.strip().lower()
            keep_alive = value != "close" and (keep_alive or value == "keep-alive")
    if length is None:
        if status in (204, 304):  # never a body
            return status, 0, keep_alive
        raise HttpError(f"{status} answer without Content-Length")
    return status, length, keep_alive
