"""The pages as routers: kept out of the OpenAPI document (they are not the API), each answer
with the security headers, every form checked for its CSRF token, and errors shown as pages."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from timebank.errors import TimebankError
from timebank.settings import Settings
from timebank.web.account import AccountPages
from timebank.web.coordinator import CoordinatorPages
from timebank.web.deps import PAGE_DEPENDENCIES
from timebank.web.details import DetailsPages
from timebank.web.exchanges import ExchangePages
from timebank.web.imports import ImportPages
from timebank.web.pot import PotPages
from timebank.web.render import TEMPLATE_FILTERS, error_page
from timebank.web.report import ReportPages
from timebank.web.security import SecurityHeaders, csrf_hook
from timebank.web.sessions import SessionPages
from timebank.web.statement import StatementPages

HERE = Path(__file__).parent
PAGES = [
    AccountPages,
    ExchangePages,
    SessionPages,
    CoordinatorPages,
    PotPages,
    DetailsPages,
    ImportPages,
    ReportPages,
    StatementPages,
]


def template_config() -> TemplateConfig:
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(TEMPLATE_FILTERS)
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


def web_routers(settings: Settings) -> list[Router]:
    pages = Router(
        path="/",
        route_handlers=PAGES,
        include_in_schema=False,
        dependencies=PAGE_DEPENDENCIES,
        before_request=csrf_hook(settings),
        # ValidationException too: the app's own handler for it would answer JSON.
        exception_handlers={
            TimebankError: error_page,
            ValidationException: error_page,
            HTTPException: error_page,
            UnicodeDecodeError: error_page,
        },
        middleware=[SecurityHeaders(no_store=True)],
    )
    static = create_static_files_router(
        path="/static",
        directories=[HERE / "static"],
        include_in_schema=False,
        # The stylesheet and the pinned API viewer are the same for everyone: a phone keeps them
        # for an hour rather than fetching them on every page (answers say how they are cached).
        cache_control=CacheControlHeader(max_age=3600),
        middleware=[SecurityHeaders(no_store=False)],
    )
    return [pages, static]
