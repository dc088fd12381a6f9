"""Application assembly: database lifecycle, routes, dependency injection, error handlers and
OpenAPI (served at ``/schema``)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIType,
    Reference,
    Schema,
    SecurityScheme,
)
from sqlalchemy.ext.asyncio import AsyncEngine

import timebank
from timebank.archive import controllers as archive_controllers
from timebank.archive.service import Archives
from timebank.auth.controllers import AuthController
from timebank.auth.csrf import ApiRequestGuard
from timebank.auth.deps import (
    provide_access,
    provide_auth,
    provide_credentials,
    provide_principal,
)
from timebank.auth.service import AuthService
from timebank.db.engine import create_engine, is_unavailable, resolve_database_url
from timebank.deps import once_let_in
from timebank.edges import MAX_BODY_BYTES, CheckedRequest, RequestGuard
from timebank.errors import (
    PROBLEM_BASE,
    UNDECODABLE,
    ServiceUnavailable,
    TimebankError,
    ValidationFailed,
    database_unavailable,
    field_error,
)
from timebank.exchanges import controllers as exchanges_controllers
from timebank.exchanges.controllers import LOGGED_FORMS
from timebank.exchanges.service import Exchanges
from timebank.imports import controllers as imports_controllers
from timebank.imports.service import Imports
from timebank.ledger import Ledger
from timebank.ledger import controllers as ledger_controllers
from timebank.ledger.pot_desk import PotDesk
from timebank.ledger.reader import LedgerReader
from timebank.openapi import PROBLEM_JSON, docs_router, problem_body
from timebank.ops import metrics
from timebank.ops.controllers import health, prometheus_metrics, ready
from timebank.ops.middleware import RequestMiddleware
from timebank.participants import controllers as participants_controllers
from timebank.reports import controllers as reports_controllers
from timebank.reports.queue import keep_applying
from timebank.reports.service import Reports
from timebank.settings import Settings, get_settings
from timebank.web.routes import template_config, web_routers

_log = logging.getLogger(__name__)

API_ROUTES = [
    AuthController,
    *participants_controllers.ROUTES,
    *exchanges_controllers.ROUTES,
    *ledger_controllers.ROUTES,
    *reports_controllers.ROUTES,
    *archive_controllers.ROUTES,
    *imports_controllers.ROUTES,
]


def _problem_response(error: TimebankError, request: Request) -> Response:
    headers = {}
    retry_after = error.extra.get("retry_after")
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Response(
        error.problem(instance=request.url.path),
        status_code=error.status_code,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _timebank_error_handler(request: Request, exc: TimebankError) -> Response:
    if isinstance(exc, ServiceUnavailable):
        metrics.DATABASE_UNAVAILABLE.inc()
    return _problem_response(exc, request)


def _validation_error_handler(request: Request, exc: ValidationException) -> Response:
    errors = [
        field_error(
            _untagged(str(e.get("key", ""))),
            str(e.get("message", "")),
            str(e.get("source", "body")),
        )
        for e in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(e, dict)
    ]
    error = ValidationFailed(exc.detail, errors=errors)
    return _problem_response(error, request)


def _undecodable_error_handler(request: Request, exc: UnicodeDecodeError) -> Response:
    """A form field or body that is not UTF-8 text is the client's mistake: 400, not a bug."""
    return _problem_response(ValidationFailed(UNDECODABLE), request)


def _untagged(key: str) -> str:
    """A field's key as the client sent it: without the name of the form a body took (a
    logged exchange or a group session, ``LOGGED_FORMS``), which pydantic puts first."""
    form, dot, rest = key.partition(".")
    return rest if dot and form in LOGGED_FORMS else key


def _unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """A database that is away answers 503 with Retry-After; anything else is a bug, logged
    with its traceback (and the request id) and answered as a plain 500 problem."""
    if is_unavailable(exc):
        metrics.DATABASE_UNAVAILABLE.inc()
        _log.warning("database unavailable: %s", exc)
        return _problem_response(database_unavailable(), request)
    _log.error("unhandled error", exc_info=exc)
    return Response(
        problem_body(
            type=f"{PROBLEM_BASE}internal",
            title="Internal error",
            status=500,
            instance=request.url.path,
        ),
        status_code=500,
        media_type=PROBLEM_JSON,
    )


def _http_error_handler(request: Request, exc: HTTPException) -> Response:
    kind = "validation" if exc.status_code == 400 else f"http-{exc.status_code}"
    return Response(
        {
            "type": f"{PROBLEM_BASE}{kind}",
            "title": exc.detail,
            "status": exc.status_code,
            "instance": request.url.path,
        },
        status_code=exc.status_code,
        media_type=PROBLEM_JSON,
        headers=exc.headers,
    )


def create_app(settings: Settings | None = None, *, database_url: str | None = None) -> Litestar:
    """Build the service. ``database_url`` overrides the settings (the CLI passes the URL of
    the embedded server it started)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def database(app: Litestar) -> AsyncIterator[None]:
        url = database_url or resolve_database_url(settings)[0]
        engine = create_engine(url, settings)
        app.state.engine = engine
        app.state.ledger = Ledger(engine, max_retries=settings.ledger_max_retries)
        app.state.auth = AuthService(engine, settings)
        app.state.exchanges = Exchanges(engine, max_retries=settings.ledger_max_retries)
        app.state.ledger_reader = LedgerReader(engine, app.state.ledger)
        app.state.pot_desk = PotDesk(engine, app.state.ledger)
        app.state.reports = Reports(engine, settings)
        app.state.archives = Archives(engine)
        app.state.imports = Imports(engine)
        applier = asyncio.create_task(keep_applying(engine), name="report aggregates")
        # What is built by now lives as long as the process: frozen, the garbage collector no
        # longer walks it in every full collection (the pauses: docs/performance.md).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # collectable again, for a process that starts the app more than once
            applier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await applier
            app.state.auth.passwords.close()
            await engine.dispose()

    def provide_engine(state: State) -> AsyncEngine:
        return state.engine

    def provide_ledger(state: State) -> Ledger:
        return state.ledger

    def provide_settings() -> Settings:
        return settings

    docs, docs_plugins = docs_router(api_docs=settings.api_docs)
    app = Litestar(
        route_handlers=[health, ready, prometheus_metrics, *API_ROUTES, *web_routers(settings)],
        template_config=template_config(),
        lifespan=[database],
        middleware=[DefineMiddleware(ApiRequestGuard, public_url=settings.public_url)],
        dependencies={
            "settings": Provide(provide_settings, sync_to_thread=False),
            "engine": Provide(provide_engine, sync_to_thread=False),
            "ledger": Provide(provide_ledger, sync_to_thread=False),
            "auth": Provide(provide_auth, sync_to_thread=False),
            "principal": Provide(provide_principal),
            "access": Provide(provide_access),
            "credentials": Provide(provide_credentials),
            "exchanges": once_let_in("exchanges"),
            "ledger_reader": once_let_in("ledger_reader"),
            "pot_desk": once_let_in("pot_desk"),
            "reports": once_let_in("reports"),
            "archives": once_let_in("archives"),
            "imports": once_let_in("imports"),
        },
        exception_handlers={
            TimebankError: _timebank_error_handler,
            ValidationException: _validation_error_handler,
            UnicodeDecodeError: _undecodable_error_handler,
            HTTPException: _http_error_handler,
            Exception: _unexpected_error_handler,
        },
        openapi_config=OpenAPIConfig(
            title="Timebank",
            version=timebank.__version__,
            description="A reciprocity ledger for timebanks: exchanges of hours, kept in a "
            "double-entry ledger of integer minutes.",
            path="/schema",
            openapi_router=docs,
            render_plugins=docs_plugins,
            use_handler_docstrings=True,
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="A token from POST /api/v1/auth/login or /auth/tokens",
                    )
                }
            ),
            security=[{"BearerToken": []}],
        ),
        request_class=CheckedRequest,
        request_max_body_size=MAX_BODY_BYTES,
        debug=False,
        logging_config=None,  # logging is configured once, by `timebank serve` (JSON lines)
    )
    document_csv_alternatives(app)
    # Outside Litestar's own handler stack, so that every request is seen: unknown paths and
    # answers given by the error handlers included.
    app.asgi_handler = RequestGuard(app.asgi_handler)  # before routing; inside the log
    app.asgi_handler = RequestMiddleware(
        app.asgi_handler, access_log=settings.access_log, https_only=settings.cookie_secure
    )
    return app


def document_csv_alternatives(app: Litestar) -> None:
    """Routes marked ``opt={"csv": True}`` also answer ``text/csv``; say so in the document
    (Litestar documents one media type per status)."""
    paths = app.openapi_schema.paths or {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not handler.opt.get("csv"):
                continue
            item = paths.get(route.path_format)
            operation = getattr(item, "get", None) if item else None
            ok = (operation.responses or {}).get("200") if operation else None
            if ok is not None and not isinstance(ok, Reference) and ok.content is not None:
                ok.content["text/csv"] = OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, description="the same figures as CSV")
                )
