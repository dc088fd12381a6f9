"""What the JSON API refuses before it reads a request, so that a browser on another site cannot
act with the visitor's session cookie, nor sign them in to an account of its choosing:

- a body whose Content-Type is not ``application/json`` (415): an HTML form can send
  ``text/plain`` that happens to be JSON, but never ``application/json``. A file upload
  (``multipart/form-data``, the imports) is read with a bearer token (which a form on
  another site cannot send) or with no cookie at all (then refused unsigned-in), never on
  the session cookie;
- a write not carrying a bearer token that the browser marks as coming from another site
  (``Sec-Fetch-Site``), or whose ``Origin`` is not the service's own (403).

Clients that send ``Authorization: Bearer …`` (curl, scripts) send no Origin and are not
affected; a browser cannot add that header cross-site without asking first, which is refused."""

from __future__ import annotations

from typing import cast
from urllib.parse import urlsplit

from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

from timebank.errors import Forbidden, TimebankError, UnsupportedMediaType

API_PREFIX = "/api/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON = "application/json"
MULTIPART = "multipart/form-data"
CROSS_SITE = "a write from another site is refused; use the service's own pages or a bearer token"


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, as browsers write it in ``Origin``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def refusal(
    method: str, headers: dict[str, str], own_origins: frozenset[str]
) -> TimebankError | None:
    """Why an API request must be refused before it is read, or None. ``headers`` have
    lower-case names; ``own_origins`` are the origins the service is reached at. The
    browser's ``Sec-Fetch-Site`` decides when it is sent; ``Origin`` otherwise."""
    if method in SAFE_METHODS:
        return None
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    bearer = scheme.lower() == "bearer" and bool(credentials.strip())
    if not bearer:
        fetch_site = headers.get("sec-fetch-site", "").lower()
        origin = headers.get("origin")
        if fetch_site:
            if fetch_site not in {"same-origin", "none"}:
                return Forbidden(CROSS_SITE)
        elif origin is not None and origin.lower() not in own_origins:
            return Forbidden(CROSS_SITE)
    has_body = headers.get("content-length", "0").strip() not in {"", "0"} or (
        "transfer-encoding" in headers
    )
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    # A file upload cannot ride on the session cookie: with a bearer token or no cookie at all.
    upload = media_type == MULTIPART and (bearer or "cookie" not in headers)
    if has_body and media_type != JSON and not upload:
        return UnsupportedMediaType(f"send the body as {JSON}", accepted=[JSON])
    return None


class ApiRequestGuard:
    """Litestar middleware applying ``refusal`` to every request under ``/api/`` (its errors
    reach the app's problem handlers)."""

    def __init__(self, app: ASGIApp, public_url: str | None = None) -> None:
        self._app = app
        self._public_origin = origin_of(public_url) if public_url else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            headers = {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in scope["headers"]
            }
            # The Host a browser sends is the site it is on: an attacker's page cannot change it.
            host = headers.get("host", "").lower()
            own = frozenset(
                {f"http://{host}", f"https://{host}"}
                | ({self._public_origin} if self._public_origin else set())
            )
            problem = refusal(cast("HTTPScope", scope)["method"], headers, own)
            if problem is not None:
                raise problem
        await self._app(scope, receive, send)
