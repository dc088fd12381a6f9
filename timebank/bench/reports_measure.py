"""Timing the reports: interleaved rounds of every job, every SQL statement the service sends,
and the plans PostgreSQL chose for them."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.db.compose import CompiledStatement
from timebank.reports import repository as report_sql


@dataclass
class Timing:
    """Wall-clock milliseconds of the measured runs of one report (the warm-up left out)."""

    key: str
    name: str
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "median_ms": round(self.median, 2),
            "min_ms": round(min(self.samples), 2),
            "max_ms": round(max(self.samples), 2),
            "runs_ms": [round(s, 2) for s in self.samples],
        }


Job = tuple[str, str, Callable[[], Awaitable[Any]]]


class StatementClock:
    """Times every SQL statement the service sends (SQLAlchemy's cursor events on its engine),
    run by run, and names each after the constant of ``timebank.reports.repository`` it comes
    from, so the table can say which query a report's time goes to."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.current: list[tuple[str, Any, float]] | None = None
        self.runs: dict[str, list[list[tuple[str, Any, float]]]] = {}
        statements = {
            name: value.sql if isinstance(value, CompiledStatement) else value
            for name, value in vars(report_sql).items()
        }
        self._names = {
            _shape(sql): name.strip("_")
            for name, sql in statements.items()
            if isinstance(sql, str) and "SELECT" in sql
        }
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        started = conn.info.pop("bench_started", None)
        if self.current is not None and started is not None:
            self.current.append((statement, parameters, time.perf_counter() - started))

    def name(self, statement: str, position: int) -> str:
        words = " ".join(statement.split()[:3])
        return self._names.get(_shape(statement), f"{position}:'{words}'")

    def breakdown(self, key: str) -> list[tuple[str, float, str, Any]]:
        """(name, median ms over the measured runs, SQL, parameters of the last run) of each
        statement of a job, in the order sent."""
        runs = self.runs.get(key, [])[1:]  # the warm-up left out
        if not runs or len({len(run) for run in runs}) != 1:
            return []
        return [
            (
                self.name(runs[-1][i][0], i + 1),
                1000 * statistics.median(run[i][2] for run in runs),
                runs[-1][i][0],
                runs[-1][i][1],
            )
            for i in range(len(runs[0]))
        ]


def _shape(sql: str) -> str:
    """SQL with its spacing collapsed: the same for a constant of the repository and for the
    statement the driver was sent."""
    return " ".join(sql.split())


async def measure(
    jobs: list[Job], runs: int, clock: StatementClock | None = None
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """One warm-up of every job, then ``runs`` rounds of every job in turn (interleaved, so
    that whatever else the machine does falls on reports and plain SQL alike)."""
    samples: dict[str, list[float]] = {key: [] for key, _, _ in jobs}
    results: dict[str, Any] = {}
    for round_number in range(runs + 1):  # round 0 is the warm-up
        for key, _, call in jobs:
            if clock is not None:
                clock.current = []
            started = time.perf_counter()
            results[key] = await call()
            elapsed = 1000 * (time.perf_counter() - started)
            if clock is not None and clock.current is not None:
                clock.runs.setdefault(key, []).append(clock.current)
                clock.current = None
            if round_number:
                samples[key].append(elapsed)
        if round_number:
            print(f"    round {round_number} of {runs} done", flush=True)
    timings = {key: Timing(key, name, samples[key]) for key, name, _ in jobs}
    for timing in timings.values():
        runs_ms = ", ".join(f"{ms:,.1f}" for ms in timing.samples)
        print(f"  {timing.key}  {timing.name}: {runs_ms} ms", flush=True)
    return timings, results


async def explain_plans(
    conn: asyncpg.Connection, breakdown: dict[str, list[tuple[str, float, str, Any]]]
) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement the service sent for a, c and d, with the
    parameters of its last run, twice: planned for those values (a custom plan, as on the
    first five runs of a prepared statement), and as the generic plan PostgreSQL may switch a
    prepared statement to from its sixth run on, as it does on the service's pooled
    connections (PREPARE, then EXECUTE under plan_cache_mode = force_generic_plan)."""
    lines: list[str] = []
    for key, statements in breakdown.items():
        for name, ms, sql, parameters in statements:
            if sql.split()[0].upper() not in ("SELECT", "WITH") or ms < 1:
                continue
            values = _positional(parameters)
            attempts = [
                ("custom", "force_custom_plan", "EXPLAIN (ANALYZE, BUFFERS) " + sql, values),
                (
                    "generic",
                    "force_generic_plan",
                    "EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_plan("
                    + ", ".join(_literal(value) for value in values)
                    + ")",
                    [],
                ),
            ]
            await conn.execute("PREPARE bench_plan AS " + sql)
            try:
                for plan, mode, explain, arguments in attempts:
                    await conn.execute(f"SET plan_cache_mode = {mode}")
                    lines += ["", f"  ===== {key}: {name} ({ms:.1f} ms in the runs), {plan} plan"]
                    try:
                        rows = await conn.fetch(explain, *arguments)
                    except asyncpg.PostgresError as error:
                        lines.append(f"  (could not explain: {error})")
                        continue
                    lines += [f"  {row[0]}" for row in rows]
            finally:
                await conn.execute("DEALLOCATE bench_plan")
    await conn.execute("SET plan_cache_mode = force_custom_plan")
    return lines


def _positional(parameters: Any) -> list[Any]:
    if isinstance(parameters, dict):
        return list(parameters.values())
    return list(parameters or ())


def _literal(value: Any) -> str:
    """A parameter's value as an SQL literal of unknown type (PostgreSQL takes it as the type
    the prepared statement expects)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        text = "{" + ",".join("NULL" if item is None else f'"{item}"' for item in value) + "}"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = str(value)
    return "'" + text.replace("'", "''") + "'"
