"""Helpers for page tests: a browser's way of using the pages over the in-process client
(cookies kept, the CSRF token sent back with each form, redirects followed)."""

from __future__ import annotations

import re
from typing import Any

from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.people import PASSWORD, Person
from timebank.auth.deps import SESSION_COOKIE
from timebank.web.security import CSRF_COOKIE

_HIDDEN = re.compile(r'<input type="hidden" name="(?P<name>[^"]+)" value="(?P<value>[^"]*)">')


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden fields of the first form on a page that has them (csrf_token, key, …)."""
    return {m["name"]: m["value"] for m in _HIDDEN.finditer(html)}


async def csrf_token(client: AsyncTestClient) -> str:
    """The CSRF token of this client's browser, fetching a page first if it has none."""
    if CSRF_COOKIE not in client.cookies:
        await client.get("/sign-in")
    return client.cookies[CSRF_COOKIE]


async def submit(
    client: AsyncTestClient, path: str, data: dict[str, Any] | None = None
) -> Response:
    """POST a form as the page would, with the CSRF token."""
    fields = {"csrf_token": await csrf_token(client), **(data or {})}
    return await client.post(path, data=fields)


async def sign_in(client: AsyncTestClient, person: Person) -> Response:
    client.cookies.clear()
    response = await submit(client, "/sign-in", {"email": person.email, "password": PASSWORD})
    assert SESSION_COOKIE in client.cookies, response.text
    return response


def as_person(client: AsyncTestClient, person: Person | None) -> None:
    """Be ``person`` in this client's browser without signing in (their API token as the
    session), or nobody."""
    client.cookies.clear()
    if person is not None:
        client.cookies.set(SESSION_COOKIE, person.token)


def text_of(html: str) -> str:
    """The page's words, without tags, spaces squeezed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


_TYPED_PARAMETER = re.compile(r"\{(\w+):\w+\}")


def page_routes(app: Litestar) -> set[str]:
    """Every "METHOD /path/{param}" kept out of the OpenAPI document: the pages and their
    static files (the OpenAPI documents themselves under /schema aside)."""
    found = set()
    for route in app.routes:
        if route.path == "/schema" or route.path.startswith("/schema/"):
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.resolve_include_in_schema():
                continue
            path = _TYPED_PARAMETER.sub(r"{\1}", route.path)
            found.update(
                f"{method} {path}" for method in handler.http_methods - {"OPTIONS", "HEAD"}
            )
    return found
