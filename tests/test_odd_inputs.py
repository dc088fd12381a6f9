"""Odd input on every route: no answer is a 5xx.

Every route of the app (read from its router, so a new route is covered without a change here;
API, pages, static files and the OpenAPI documents alike) is called by an anonymous caller, a
member, a coordinator, a funder and an admin, each signed in both ways (bearer token and session
cookie, with a valid CSRF token), with each kind of odd input:

- a NUL in each path parameter, each query parameter, a header, a cookie, every string of a
  JSON body and every field of a form;
- JSON nested 100,000 deep (over the size limit) and 10,000 deep (under it), a body over the
  size limit, as JSON and as a form;
- 0001-01-01 and 9999-12-31 (and the same as date-times) in every query parameter and every date
  of a body;
- non-ASCII and over-long session and CSRF cookies, and a non-ASCII CSRF token in a form;
- names made of ``$…$`` (matplotlib's mathtext) for the timebank, a category and a participant,
  then every GET route.

"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.params import CookieParameter, HeaderParameter
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import unique_slug
from tests.people import Person, World, make_world
from timebank.app import create_app
from timebank.auth import repository as auth_repository
from timebank.auth.deps import SESSION_COOKIE
from timebank.auth.secrets import new_token
from timebank.edges import MAX_BODY_BYTES
from timebank.reports.charts import CHARTS
from timebank.settings import Settings
from timebank.web.security import CSRF_COOKIE, CSRF_FIELD

ROLES = ("anonymous", "member", "coordinator", "funder", "admin")
NUL = "a\x00b"
EXTREME_DATES = ("0001-01-01", "9999-12-31", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z")
DOLLAR = "$x$ and $\\frac{1}{0}$ and $\\undefined{$ and $x^^$"
CSRF = "c" * 43  # a well-formed CSRF token: the same in cookie and form
TEMPLATES = Path(__file__).parents[1] / "timebank" / "web" / "templates"
# Every form field the pages know: those in the templates, and the log form's hidden ones.
FORM_FIELDS = sorted(
    set(re.findall(r'name="(\w+)"', "".join(p.read_text() for p in TEMPLATES.glob("*.html"))))
    | {"giver", "giver_id", "receiver", "receiver_id", "who_id"}
) or ["name"]

_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")
_NOT_QUERY = {"request", "state", "scope", "data", "headers", "cookies", "socket", "body"}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # "/t/{slug}/exchanges/{exchange_id}"
    query: tuple[str, ...]
    body_schema: dict[str, Any] | None  # the JSON body's schema (API routes)
    is_page: bool

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def params(self) -> list[str]:
        return _PARAMETER.findall(self.path)

    @property
    def sends_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


def _query_names(handler: Any, path_params: set[str], dependencies: set[str]) -> tuple[str, ...]:
    names = []
    for name, parameter in handler.parsed_fn_signature.parameters.items():
        if name in _NOT_QUERY or name in path_params or name in dependencies:
            continue
        definition = parameter.kwarg_definition
        if isinstance(definition, HeaderParameter | CookieParameter) or getattr(
            definition, "header", None
        ):
            continue
        names.append(
            getattr(definition, "name", None) or getattr(definition, "query", None) or name
        )
    return tuple(names)


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema or "oneOf" in schema:
        options = [s for s in schema.get("anyOf", schema.get("oneOf")) if s.get("type") != "null"]
        return _resolve(options[0], components) if options else {"type": "null"}
    return schema


def app_routes(app: Litestar) -> list[Route]:
    """Every method and path of the app, with its query parameters and JSON body schema."""
    document = app.openapi_schema.to_schema()
    components = document.get("components", {}).get("schemas", {})
    dependencies = set(app.dependencies)
    found: dict[str, Route] = {}
    for route in app.routes:
        path = _PARAMETER.sub(r"{\1}", route.path)
        for handler in getattr(route, "route_handlers", []):
            dependencies_here = dependencies | set(handler.resolve_dependencies())
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                operation = document.get("paths", {}).get(path, {}).get(method.lower(), {})
                content = operation.get("requestBody", {}).get("content", {})
                schema = content.get("application/json", {}).get("schema")
                item = Route(
                    method=method,
                    path=path,
                    query=_query_names(handler, set(_PARAMETER.findall(path)), dependencies_here),
                    body_schema=_resolve(schema, components) if schema else None,
                    is_page=not handler.resolve_include_in_schema(),
                )
                found[item.label] = item
    return [found[label] for label in sorted(found)]


def _collect_routes() -> list[Route]:
    # Built only to read its router: the database is opened by the lifespan, never here.
    app = create_app(Settings(cookie_secure=False), database_url="postgresql://unused/unused")
    return app_routes(app)


ROUTES = _collect_routes()


def cases(kind: str, routes: list[Route]) -> list[Any]:
    return [pytest.param(route, id=route.label) for route in routes]


# --- The service and its people ---------------------------------------------------------------


@dataclass
class Ctx:
    client: AsyncTestClient
    engine: AsyncEngine
    world: World
    exchange_id: int
    category: str = "gardening"
    failures: list[str] = field(default_factory=list)

    def person(self, role: str) -> Person | None:
        return None if role == "anonymous" else self.world.people[role]


@pytest.fixture(scope="module")
async def odd_client(database_url: str, engine: AsyncEngine) -> AsyncIterator[AsyncTestClient]:
    settings = Settings(cookie_secure=False, report_settle_seconds=0)
    async with AsyncTestClient(app=create_app(settings, database_url=database_url)) as client:
        yield client
    # The walk's failed sign-ins come from the test client's one address, as every later test's
    # do: forget them, so that no later sign-in waits out a delay it did not earn.
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE sign_in_counters SET expires_at = now() - interval '1 second'")
        )


async def _setup(client: AsyncTestClient, engine: AsyncEngine, *, odd_names: bool) -> Ctx:
    world = await make_world(engine)
    slug = world.timebank.slug
    admin, member = world.admin.headers, world.member.headers
    category = "$x$" if odd_names else "gardening"
    base = f"/api/v1/timebanks/{slug}"
    answer = await client.post(
        f"{base}/categories", json={"slug": category, "name": category}, headers=admin
    )
    if odd_names:
        await client.patch(base, json={"name": DOLLAR}, headers=admin)
        await client.post(f"{base}/categories", json={"slug": "odd", "name": DOLLAR}, headers=admin)
        await client.post(
            f"{base}/participants", json={"display_name": DOLLAR, "kind": "member"}, headers=admin
        )
    logged = await client.post(
        f"{base}/exchanges",
        json={
            "giver_id": world.member.participant_id,
            "receiver_id": world.other_member.participant_id,
            "minutes": 60,
            "service_date": "2026-01-02",
            "category": category if answer.status_code == 201 else "gardening",
            "description": DOLLAR if odd_names else "Weeded",
        },
        headers=member,
    )
    assert logged.status_code == 201, logged.text
    exchange_id = logged.json()["id"]
    if odd_names:  # approved, so that reports and charts have figures to show
        await client.post(
            f"{base}/exchanges/{exchange_id}/confirm", headers=world.other_member.headers
        )
        await client.post(
            f"{base}/exchanges/{exchange_id}/approve", headers=world.coordinator.headers
        )
    return Ctx(client, engine, world, exchange_id, category)


@pytest.fixture(scope="module")
async def ctx(odd_client: AsyncTestClient, engine: AsyncEngine) -> Ctx:
    return await _setup(odd_client, engine, odd_names=False)


@pytest.fixture(scope="module")
async def dollar_ctx(odd_client: AsyncTestClient, engine: AsyncEngine) -> Ctx:
    return await _setup(odd_client, engine, odd_names=True)


# --- Sending ------------------------------------------------------------------------------------


def _path_values(ctx: Ctx, route: Route) -> dict[str, str]:
    world = ctx.world
    return {
        "slug": world.timebank.slug,
        "participant_id": str(world.member.participant_id),
        "exchange_id": str(ctx.exchange_id),
        "token_id": "1",
        "action": "confirm",
        "file": f"{next(iter(CHARTS))}.svg",
        "file_path": "site.css",
        "path": "openapi.json",
    }


def url_of(ctx: Ctx, route: Route, **override: str) -> str:
    values = {**_path_values(ctx, route), **override}
    return _PARAMETER.sub(lambda m: values.get(m[1], "1"), route.path)


async def _credentials(ctx: Ctx, route: Route, role: str) -> tuple[dict[str, str], dict[str, str]]:
    person = ctx.person(role)
    cookies = {CSRF_COOKIE: CSRF}
    if person is None:
        return {}, cookies
    token = person.token
    if "logout" in route.path or "sign-out" in route.path:
        token = await _fresh_token(ctx.engine, person)  # signing out ends the token it uses
    return {"Authorization": f"Bearer {token}"}, {**cookies, SESSION_COOKIE: token}


async def _fresh_token(engine: AsyncEngine, person: Person) -> str:
    secret, token_hash = new_token()
    async with engine.begin() as conn:
        await auth_repository.insert_token(
            conn,
            user_id=person.user_id,
            kind="api",
            name="odd",
            token_hash=token_hash,
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
    return secret


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


async def send(
    ctx: Ctx,
    route: Route,
    role: str,
    *,
    url: str | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    cookies: dict[str, str] | None = None,
    raw_cookie: bytes | None = None,
    **body: Any,
) -> None:
    """One call; a 5xx is noted in ``ctx.failures`` (the test asserts there are none)."""
    auth, jar = await _credentials(ctx, route, role)
    all_headers: dict[str, Any] = {**auth, **(headers or {})}
    all_headers["cookie"] = raw_cookie or _cookie_header({**jar, **(cookies or {})})
    ctx.client.cookies.clear()
    target = url or url_of(ctx, route)
    response = await ctx.client.request(
        route.method, target, params=query, headers=all_headers, **body
    )
    if response.status_code >= 500:
        ctx.failures.append(
            f"{role}: {route.method} {target} {query or ''} -> {response.status_code} "
            f"{response.text[:300]!r}"
        )


def sample(
    schema: dict[str, Any],
    components: dict[str, Any],
    ctx: Ctx,
    *,
    text: str,
    day: str,
    name: str = "",
) -> Any:
    """A body for ``schema``: ``text`` in every free string, ``day`` in every date, real ids
    and categories where the field names them (so the call gets past "not found")."""
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        return {
            key: sample(_resolve(value, components), components, ctx, text=text, day=day, name=key)
            for key, value in schema.get("properties", {}).items()
        }
    if kind == "array":
        item = _resolve(schema.get("items", {}), components)
        return [sample(item, components, ctx, text=text, day=day, name=name)]
    if kind == "integer":
        if name in ("giver_id", "participant_id") or name.endswith("ids"):
            return ctx.world.member.participant_id if "ids" not in name else ctx.exchange_id
        if name == "receiver_id":
            return ctx.world.other_member.participant_id
        return 60
    if kind == "boolean":
        return False
    if kind == "string":
        if schema.get("format") in ("date", "date-time"):
            return day
        if name == "category":
            return ctx.category
        if name == "slug":
            return unique_slug()
        if schema.get("format") == "email" or name == "email":
            return f"odd-{uuid.uuid4().hex[:8]}@example.org" if text == "ok" else text
        return text
    return text


def json_body(ctx: Ctx, route: Route, *, text: str, day: str = "2026-01-02") -> Any:
    components = ctx.client.app.openapi_schema.to_schema().get("components", {}).get("schemas", {})
    assert route.body_schema is not None
    return sample(route.body_schema, components, ctx, text=text, day=day)


def form_body(ctx: Ctx, *, text: str, day: str = "2026-01-02") -> dict[str, Any]:
    values: dict[str, Any] = {name: text for name in FORM_FIELDS}
    values.update(
        {
            CSRF_FIELD: CSRF,
            "service_date": day,
            "from": day,
            "to": day,
            "ids": str(ctx.exchange_id),
            "who_id": str(ctx.world.other_member.participant_id),
            "giver_id": str(ctx.world.member.participant_id),
            "receiver_id": str(ctx.world.other_member.participant_id),
            "duration": "1:00",
            "category": ctx.category,
        }
    )
    return values


async def each_role(ctx: Ctx, route: Route, **call: Any) -> None:
    for role in ROLES:
        await send(ctx, route, role, **call)


def no_5xx(ctx: Ctx) -> None:
    failures, ctx.failures[:] = list(ctx.failures), []
    assert not failures, "\n".join(failures)


# --- The odd inputs -----------------------------------------------------------------------------


def test_every_route_is_walked():
    labels = {route.label for route in ROUTES}
    assert "POST /api/v1/auth/login" in labels and "POST /sign-in" in labels
    assert "GET /static/{file_path}" in labels and "GET /schema" in labels
    assert len(ROUTES) > 50


@pytest.mark.parametrize("route", cases("nul", ROUTES))
async def test_a_nul_anywhere(ctx: Ctx, route: Route):
    for param in route.params or [""]:
        url = url_of(ctx, route, **{param: "a%00b"}) if param else url_of(ctx, route) + "%00"
        await each_role(ctx, route, url=url)
    for name in [*route.query, "q"]:
        await each_role(ctx, route, query={name: NUL})
    await each_role(ctx, route, headers={"X-Odd": NUL, "Idempotency-Key": NUL})
    await each_role(ctx, route, cookies={SESSION_COOKIE: "a%00b", CSRF_COOKIE: "a%00b"})
    if route.sends_body:
        if route.body_schema is not None:
            await each_role(ctx, route, json=json_body(ctx, route, text=NUL))
        await each_role(ctx, route, data=form_body(ctx, text=NUL))
    no_5xx(ctx)


@pytest.mark.parametrize("route", cases("size", [r for r in ROUTES if r.sends_body]))
async def test_deep_and_large_bodies(ctx: Ctx, route: Route):
    json_type = {"content-type": "application/json"}
    for depth in (100_000, 10_000, 40):
        await each_role(ctx, route, content="[" * depth + "]" * depth, headers=json_type)
    await each_role(ctx, route, content=b"[" + b"1," * MAX_BODY_BYTES + b"1]", headers=json_type)
    await each_role(ctx, route, data={CSRF_FIELD: CSRF, "description": "x" * MAX_BODY_BYTES})
    no_5xx(ctx)


@pytest.mark.parametrize("route", cases("dates", ROUTES))
async def test_extreme_dates(ctx: Ctx, route: Route):
    for day in EXTREME_DATES:
        for name in route.query:
            await each_role(ctx, route, query={name: day})
    periods = [(low, high) for low in EXTREME_DATES[:2] for high in EXTREME_DATES[:2]]
    if {"from", "to"} <= set(route.query):
        for start, end in periods:
            await each_role(ctx, route, query={"from": start, "to": end})
    for day in EXTREME_DATES if route.sends_body else ():
        if route.body_schema is not None:
            await each_role(ctx, route, json=json_body(ctx, route, text="ok", day=day))
        if route.is_page:
            await each_role(ctx, route, data=form_body(ctx, text="ok", day=day))
    no_5xx(ctx)


@pytest.mark.parametrize("route", cases("cookies", ROUTES))
async def test_odd_cookies_and_csrf_tokens(ctx: Ctx, route: Route):
    form = {**form_body(ctx, text="ok"), CSRF_FIELD: "é" * 43} if route.sends_body else None
    for cookie in (
        f"{SESSION_COOKIE}=é".encode(),
        f"{CSRF_COOKIE}={'é' * 43}; {SESSION_COOKIE}={'ü' * 64}".encode(),
        f"{CSRF_COOKIE}={'é' * 43}".encode("latin-1"),
        f"{CSRF_COOKIE}={'c' * 4000}; {SESSION_COOKIE}={'s' * 4000}".encode(),
        b"=; ;;=;" + bytes(range(0x80, 0xFF)),
    ):
        await each_role(ctx, route, raw_cookie=cookie, data=form)
    if route.sends_body:
        await each_role(ctx, route, data=form)  # the cookie is fine, the form's token is not
    no_5xx(ctx)


@pytest.mark.parametrize("route", cases("dollar", [r for r in ROUTES if r.method == "GET"]))
async def test_names_with_dollar_signs(dollar_ctx: Ctx, route: Route):
    ctx = dollar_ctx
    await each_role(ctx, route)
    if route.path.endswith("/charts/{file}"):
        for chart in CHARTS:
            await each_role(ctx, route, url=url_of(ctx, route, file=f"{chart}.svg"))
    no_5xx(ctx)


# --- The findings, one by one -------------------------------------------------------------------


async def test_a_nul_in_a_slug_is_a_bad_request(client, world):
    response = await client.get("/api/v1/timebanks/riverside%00x", headers=world.admin.headers)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "NUL" in response.json()["detail"]


@pytest.mark.parametrize("depth", [100_000, 10_000])
async def test_json_nested_deep_on_sign_in_is_refused(client, depth):
    response = await client.post(
        "/api/v1/auth/login",
        content='{"email": "a@example.org", "password": "x", "x": '
        + "[" * depth
        + "]" * depth
        + "}",
        headers={"content-type": "application/json"},
    )

    assert response.status_code == (413 if depth * 2 > MAX_BODY_BYTES else 400)
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_non_ascii_csrf_token_re_renders_as_a_refusal(client, world):
    response = await client.post(
        "/sign-in",
        data={CSRF_FIELD: "é" * 43, "email": world.member.email, "password": "x"},
        headers={"cookie": f"{CSRF_COOKIE}={'é' * 43}".encode()},
    )

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert SESSION_COOKIE not in response.cookies


async def test_a_body_not_sent_in_time_is_given_up():
    from litestar import post
    from litestar.params import JSONBody

    from timebank.edges import CheckedRequest, RequestGuard

    @post("/echo", sync_to_thread=False)
    def echo(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        return data

    app = Litestar([echo], request_class=CheckedRequest)
    guarded = RequestGuard(app, body_seconds=0.05)
    sent: list[dict[str, Any]] = []
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b'{"a": ', "more_body": True}
        await asyncio.Event().wait()  # the rest never comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/echo",
        "raw_path": b"/echo",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    await guarded(scope, receive, send)

    assert sent[0]["status"] == 408


async def test_form_fields_that_are_not_utf8_are_refused_not_a_crash(client, world):
    # A multipart field's bytes are decoded as UTF-8 before anything else looks at the form.
    not_text = {"email": (None, b"\xff\xfe"), "password": (None, b"x")}
    for path in ("/sign-in", f"/t/{world.timebank.slug}/imports"):
        page = await client.post(path, files=not_text)
        assert page.status_code == 400, (path, page.status_code)
        assert page.headers["content-type"].startswith("text/html")
        assert "not UTF-8" in page.text
    api = await client.post(
        f"/api/v1/timebanks/{world.timebank.slug}/imports",
        files={"file": ("people.csv", b"name\nAda\n"), "kind": (None, b"\xffpeople")},
        headers=world.coordinator.headers,
    )
    assert api.status_code == 422, api.text
    assert api.json()["detail"] == "what was sent is not UTF-8 text"
