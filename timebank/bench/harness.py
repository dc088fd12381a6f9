"""What every benchmark shares: a fresh embedded PostgreSQL, what it is and how much CPU it
uses, the same footing before each phase, and the cells and lines of the printed tables."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from timebank.db import embedded
from timebank.ledger.audit import AuditReport

CpuClock = Callable[[], float]


def start_server() -> str:
    """A fresh embedded server in a temporary directory; both are gone when the process exits
    (the server's own exit hook stops it and deletes its data, then ours removes the rest)."""
    data_dir = Path(tempfile.mkdtemp(prefix="timebank-bench-"))
    # Registered before the server's hook, so it runs after it (exit hooks run last-in first-out).
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    return embedded.start(data_dir, delete_on_exit=True)


async def server_facts(dsn: str) -> tuple[str, int | None]:
    """The server's version and its postmaster's process id."""
    conn = await asyncpg.connect(dsn)
    try:
        version = await conn.fetchval("SHOW server_version")
        data_directory = await conn.fetchval("SHOW data_directory")
    finally:
        await conn.close()
    try:
        pid_file = Path(data_directory) / "postmaster.pid"
        return version, int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return version, None


def server_cpu_clock(postmaster_pid: int | None) -> CpuClock | None:
    """CPU seconds used so far by the postmaster and its children: those it has now, and
    those that have exited (the postmaster reaps them, so their time is in its children's
    times), or None where psutil cannot see them."""
    try:
        import psutil

        postmaster = psutil.Process(postmaster_pid)
    except Exception:
        return None

    def seconds() -> float:
        total = 0.0
        for process in [postmaster, *postmaster.children()]:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
            if process is postmaster:
                total += times.children_user + times.children_system
        return total

    return seconds


def process_tree_clock(pid: int) -> CpuClock:
    """CPU seconds of a process and its children now (the service's workers)."""
    import psutil

    root = psutil.Process(pid)

    def seconds() -> float:
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    return seconds


async def settle(dsn: str) -> None:
    """Start every phase from the same footing: fresh statistics, dead rows cleared, and a
    checkpoint behind it rather than in the middle of it. The whole database is vacuumed, not
    only the ledger's tables: enrolling a thousand members a moment earlier leaves a thousand
    dead versions of their timebank's row (its member count), which every request then steps
    over until autovacuum's next round, up to a minute later."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM (ANALYZE)")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


@dataclass
class Measured:
    """What every phase measures: how long its window took, the client's CPU seconds in it,
    and the latency of each call."""

    name: str
    elapsed: float = 0.0
    errors: int = 0
    client_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)

    def latency_ms(self, quantile: float) -> float | None:
        """Latency of one call at ``quantile``."""
        return quantile_ms(self.latencies, quantile)

    def rate(self, count: int) -> float:
        """``count`` per second of the measured window."""
        return count / self.elapsed if self.elapsed > 0 else 0.0


def warmup_for(seconds: float) -> float:
    """Seconds of unmeasured warm-up before a phase of ``seconds``."""
    return min(2.0, max(0.5, seconds / 5))


def quantile_ms(latencies: Sequence[float], quantile: float) -> float | None:
    """Milliseconds at ``quantile`` of latencies in seconds (None for fewer than two)."""
    if len(latencies) < 2:
        return None
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return 1000 * cuts[round(quantile * 100) - 1]


def share(part: float | None, whole: float | None) -> float | None:
    """``part / whole``, or None where either is missing or ``whole`` is zero."""
    return part / whole if part is not None and whole else None


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def cell(value: float | None, width: int, digits: int = 2) -> str:
    """A right-aligned table cell; a dash where there is no figure."""
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def audit_line(report: AuditReport) -> str:
    """The closing line of a benchmark: what the ledger audit checked, and what it found."""
    return (
        f"  audit: {report.timebanks} timebank(s), {report.accounts} accounts, "
        f"{report.transfers} transfers, {report.postings} postings: "
        + ("ledger verified clean" if report.ok else f"{len(report.findings)} problem(s) found")
    )
