"""Operations endpoints: liveness (``/health``), readiness (``/ready``) and Prometheus metrics
(``/metrics``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import ip_address
from typing import Literal

from litestar import Request, Response, get
from litestar.openapi import ResponseSpec
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db import migrations
from timebank.db.statements import fetch_value
from timebank.deps import EngineDep, SettingsDep
from timebank.errors import Forbidden
from timebank.openapi import problems
from timebank.ops import metrics


@dataclass
class Health:
    status: Literal["ok"]


@dataclass
class Readiness:
    status: Literal["ready", "unavailable"]
    database: Literal["ok", "unreachable"]
    migrations: Literal["current", "behind", "unknown"]
    revision: str | None
    expected_revision: str | None


@get("/health", summary="Liveness", tags=["operations"], security=[])
async def health() -> Health:
    """Answer 200 while the process serves requests, whatever the database is doing (a
    restart would not bring the database back; see ``/ready`` for that)."""
    return Health(status="ok")


@lru_cache(maxsize=1)
def _head_revision() -> str | None:
    return migrations.head_revision()


async def _revision(conn: AsyncConnection) -> str | None:
    """The database's migration revision; None on a database never migrated."""
    if await fetch_value(conn, "SELECT to_regclass('alembic_version')") is None:
        return None
    return await fetch_value(conn, "SELECT version_num FROM alembic_version")


@get(
    "/ready",
    summary="Readiness",
    tags=["operations"],
    security=[],
    responses={
        503: ResponseSpec(
            data_container=Readiness,
            description="The database does not answer, or its schema is not the newest",
        )
    },
)
async def ready(engine: EngineDep, settings: SettingsDep) -> Response[Readiness]:
    """Answer 200 when the database answers and its schema is at the newest migration this
    version of the service knows; 503 otherwise (send no traffic here yet)."""
    expected = _head_revision()
    try:
        async with asyncio.timeout(settings.db_connect_timeout + 1):
            async with engine.connect() as conn:
                revision = await _revision(conn)
    except Exception:  # whatever keeps the database from answering means "not ready"
        readiness = Readiness("unavailable", "unreachable", "unknown", None, expected)
        return Response(readiness, status_code=503)
    if revision != expected:
        readiness = Readiness("unavailable", "ok", "behind", revision, expected)
        return Response(readiness, status_code=503)
    return Response(Readiness("ready", "ok", "current", revision, expected))


# Prometheus' type names its charset, which Litestar adds to every text/ type again.
_METRICS_TYPE = metrics.CONTENT_TYPE.replace("; charset=utf-8", "")


@get(
    "/metrics",
    summary="Prometheus metrics",
    tags=["operations"],
    security=[],
    media_type=_METRICS_TYPE,
    responses=problems(403),
)
async def prometheus_metrics(
    request: Request, engine: EngineDep, settings: SettingsDep
) -> Response[bytes]:
    """Requests, latencies, ledger retries, exchanges by state and postings, in Prometheus'
    text format; only for clients in ``TIMEBANK_METRICS_ALLOW`` (loopback by default)."""
    if not _allowed(request, settings.metrics_networks):
        raise Forbidden("metrics are served only to the addresses in TIMEBANK_METRICS_ALLOW")
    families = await metrics.database_families(engine)
    return Response(metrics.render(families), media_type=_METRICS_TYPE)


def _allowed(request: Request, networks: list) -> bool:
    host = request.client.host if request.client else None
    try:
        address = ip_address(host or "")
    except ValueError:
        return False  # not an IP address at all (e.g. an in-process test client)
    return any(address in network for network in networks)
