"""Prometheus metrics. Requests, latencies and transaction retries are counted in process (across
worker processes when ``timebank serve`` runs several: prometheus_client's multiprocess mode,
through the directory the CLI names in ``PROMETHEUS_MULTIPROC_DIR``); exchanges by state and
postings are read from the database at scrape time, so they are right whichever worker
answers and however many restarts there were."""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.db.statements import execute, fetch, fetch_value

CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUESTS = Counter(
    "timebank_http_requests",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "timebank_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DATABASE_UNAVAILABLE = Counter(
    "timebank_database_unavailable",
    "Requests answered 503 because the database was away or too slow",
)

# A full count: cheap at a scrape every few seconds, bounded by the timeout below.
_EXCHANGES_BY_STATE = "SELECT state, count(*) FROM exchanges GROUP BY state"
_POSTINGS = "SELECT coalesce(sum(version), 0) FROM accounts"  # one posting per version
# Approvals and reversals the report aggregates have yet to take in (a second or so of them).
_REPORT_QUEUE = "SELECT count(*) FROM report_queue"


class _Snapshot(Collector):
    """Gauges read from the database for one scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


async def database_families(engine: AsyncEngine) -> list[Metric]:
    """Exchanges by state, postings and the report aggregates' queue, as the database has them
    now. Nothing (rather than a failed scrape) when the database does not answer: the request
    metrics still matter then."""
    exchanges = GaugeMetricFamily(
        "timebank_exchanges", "Exchanges recorded, by state", labels=["state"]
    )
    postings = GaugeMetricFamily("timebank_postings", "Postings in the ledger")
    queued = GaugeMetricFamily(
        "timebank_report_queue",
        "Approvals and reversals not yet applied to the report aggregates (reports count them)",
    )
    up = GaugeMetricFamily("timebank_database_up", "1 when the database answered this scrape")
    try:
        async with engine.begin() as conn:
            await execute(conn, "SET LOCAL statement_timeout = '2s'")
            rows = await fetch(conn, _EXCHANGES_BY_STATE)
            posted = await fetch_value(conn, _POSTINGS)
            waiting = await fetch_value(conn, _REPORT_QUEUE)
    except Exception:  # a scrape must not fail with the database: report it as down instead
        up.add_metric([], 0)
        return [up]
    for row in rows:
        exchanges.add_metric([row["state"]], row["count"])
    postings.add_metric([], posted)
    queued.add_metric([], waiting)
    up.add_metric([], 1)
    return [exchanges, postings, queued, up]


def render(families: list[Metric]) -> bytes:
    """The exposition text: this process's (or every worker's) metrics and ``families``."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # prometheus_client's own variable
        MultiProcessCollector(registry)
        output = generate_latest(registry)
    else:
        output = generate_latest(REGISTRY)
    return output + generate_latest(_registry_of(families))


def _registry_of(families: list[Metric]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(_Snapshot(families))
    return registry
