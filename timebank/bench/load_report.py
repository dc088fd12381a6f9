"""What the load benchmark prints and returns: its table beside both floors, the targets, CPU,
the mix of requests and their latencies, the errors seen and the ledger audit."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from timebank.bench import floor as ledger_floor
from timebank.bench.harness import audit_line, cell, rounded, share
from timebank.bench.load_clients import LOG_SHARE
from timebank.bench.load_phase import PhaseResult
from timebank.bench.pgbench import CFloor
from timebank.ledger.audit import AuditReport

# The target: posted exchanges/s at least this share of the floor's transfers/s, ...
TARGET_SHARE_OF_FLOOR = 0.2
# ... with p99 latency at most this, at 64 concurrent clients.
TARGET_P99_MS = 150


@dataclass
class LoadRun:
    """Everything one run of the load benchmark measured, and how it was set up."""

    version: str
    clients: int
    seconds: float
    warmup: float
    workers: int
    pool_size: int
    members: int
    approval_members: int
    coordinators: int
    access_log: bool
    paced_share: float
    floor_clients: int
    floor: ledger_floor.PhaseResult
    c_floor: CFloor
    history: list[PhaseResult]
    history_seconds: float
    auto: PhaseResult
    paced: PhaseResult | None
    approval: PhaseResult
    audit: AuditReport

    @property
    def results(self) -> list[PhaseResult]:
        return [self.auto, *([self.paced] if self.paced else []), self.approval]

    @property
    def offered_logs_per_s(self) -> float:
        return self.paced_share * self.floor.per_second


_HEADER = (
    f"  {'phase':<40}{'requests':>9}{'req/s':>8}{'posted':>8}{'posted/s':>9}"
    f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'errors':>7}{'5xx':>5}{'vs floor':>9}{'vs C':>7}"
)


def _row(result: PhaseResult, run: LoadRun) -> str:
    posted_per_s = result.per_second(result.posted)
    return (
        f"  {result.name:<40}{result.requests:>9}{result.per_second(result.requests):>8.0f}"
        f"{result.posted:>8}{posted_per_s:>9.1f}"
        f"{cell(result.latency_ms(0.50), 8, 1)}{cell(result.latency_ms(0.95), 8, 1)}"
        f"{cell(result.latency_ms(0.99), 8, 1)}{result.errors:>7}{result.server_errors:>5}"
        f"{share(posted_per_s, run.floor.per_second) or 0:>9.2f}"
        f"{cell(share(posted_per_s, run.c_floor.per_second), 7)}"
    )


def _floor_row(
    name: str, floor: ledger_floor.PhaseResult, versus_floor: float, versus_c: float | None
) -> str:
    return (
        f"  {name:<40}{floor.transfers:>9}"
        f"{floor.per_second:>8.0f}{floor.transfers:>8}{floor.per_second:>9.1f}"
        f"{cell(floor.latency_ms(0.50), 8, 1)}{cell(floor.latency_ms(0.95), 8, 1)}"
        f"{cell(floor.latency_ms(0.99), 8, 1)}{floor.errors:>7}{'-':>5}"
        f"{versus_floor:>9.2f}{cell(versus_c, 7)}"
    )


def _print_setup(run: LoadRun) -> None:
    print("Load benchmark: the service over HTTP against the raw-SQL floor, same run")
    print(
        f"  PostgreSQL {run.version}; {os.cpu_count()} CPU(s) shared by database, service and "
        f"load generator; {run.workers} worker(s), pool {run.pool_size} each; {run.clients} "
        f"clients; {run.seconds:g} s per phase after a {run.warmup:g} s warm-up"
    )
    print(
        f"  auto-approve timebank: {run.members} members; coordinator approval: "
        f"{run.approval_members} members, {run.coordinators} coordinators; access log "
        f"{'on' if run.access_log else 'off'}"
    )
    print(
        f"  history before measuring: {run.history[0].requests} requests to the auto-approve "
        f"and {run.history[1].requests} to the coordinator-approval timebank "
        f"({run.history_seconds:g} s each); the database vacuumed and analyzed before each phase"
    )
    if run.paced:
        print(
            f"  paced phase: Poisson arrivals per client, {run.offered_logs_per_s:.1f} logs/s "
            f"offered in all ({run.paced_share:g}x the floor) plus reads at their share, "
            f"{run.offered_logs_per_s / LOG_SHARE:.1f} requests/s; latency from each request's "
            "scheduled time"
        )


def _print_by_kind(results: list[PhaseResult]) -> None:
    print("  CPU ms per request (service processes / PostgreSQL / this load generator):")
    for result in results:
        cells = [
            cell(result.cpu_ms_per_request(cpu), 0, 2)
            for cpu in (result.service_cpu, result.database_cpu, result.client_cpu)
        ]
        print(f"    {result.name}: {' / '.join(cells)}")
    print("  requests by kind (balance and report reads are part of each phase's figures above):")
    for result in results:
        kinds = ", ".join(
            f"{kind} {count} ({100 * count / result.requests:.0f}%)"
            for kind, count in result.kinds.most_common()
        )
        print(f"    {result.name}: {kinds or '-'}")
    print("  latency by kind of request, p50 / p99 ms:")
    for result in results:
        cells = []
        for kind, _count in result.kinds.most_common():
            times = sorted(result.kind_latencies.get(kind, []))
            if times:
                kind_p50 = 1000 * times[len(times) // 2]
                kind_p99 = 1000 * times[min(len(times) - 1, int(0.99 * len(times)))]
                cells.append(f"{kind} {kind_p50:.0f} / {kind_p99:.0f}")
        print(f"    {result.name}: {', '.join(cells) or '-'}")


def report(run: LoadRun) -> dict[str, Any]:
    """Print the run's figures and return them."""
    floor_per_s, c_per_s = run.floor.per_second, run.c_floor.per_second
    auto_posted_per_s = run.auto.per_second(run.auto.posted)
    ratio = share(auto_posted_per_s, floor_per_s) or 0.0
    p99 = run.auto.latency_ms(0.99)
    # The history's answers count too: a 5xx there is a 5xx.
    server_errors = sum(result.server_errors for result in [*run.history, *run.results])
    print()
    _print_setup(run)
    print()
    print(_HEADER)
    print(
        _floor_row(
            f"floor: raw SQL transfers ({run.floor_clients} conns)",
            run.floor,
            1,
            share(floor_per_s, c_per_s),
        )
    )
    if run.c_floor.result is not None:
        c_row = _floor_row(
            f"C floor: pgbench ({run.floor_clients} conns)",
            run.c_floor.result,
            share(c_per_s, floor_per_s) or 0,
            None,
        )
        print(c_row)
    for result in run.results:
        print(_row(result, run))
    print()
    if run.c_floor.result is not None:
        print(
            f"  C floor (pgbench, {run.floor_clients} clients, same SQL as the floor): "
            f"{c_per_s:.1f} transfers/s; floor / C floor {share(floor_per_s, c_per_s):.2f} "
            f"({run.c_floor.note})"
        )
    else:
        print(f"  C floor (pgbench): none: {run.c_floor.note}")
    print(
        f"  targets: posted exchanges/s >= {TARGET_SHARE_OF_FLOOR:.2f}x floor transfers/s, "
        f"p99 <= {TARGET_P99_MS} ms, no 5xx"
    )
    print(
        f"  auto-approve, saturated ({run.clients} clients, no think time): posted/s "
        f"{ratio:.2f}x floor, p99 {cell(p99, 0, 1)} ms (this latency is the queue: clients / "
        f"throughput)" + _versus_c(auto_posted_per_s, c_per_s)
    )
    paced_ratio = paced_p99 = None
    paced = run.paced
    if paced:
        paced_posted_per_s = paced.per_second(paced.posted)
        paced_ratio = paced_posted_per_s / floor_per_s
        paced_p99 = paced.latency_ms(0.99)
        print(
            f"  auto-approve paced at {run.paced_share:g}x floor: posted/s "
            f"{paced_ratio:.2f}x (offered {run.offered_logs_per_s:.1f}/s, posted "
            f"{paced_posted_per_s:.1f}/s), p99 {cell(paced_p99, 0, 1)} ms "
            + (
                f"counting {paced.missed} step(s) due but never sent, with their wait "
                if paced.missed
                else ""
            )
            + (
                f"(target <= {TARGET_P99_MS} ms)"
                if run.paced_share == TARGET_SHARE_OF_FLOOR
                else f"(the target is at {TARGET_SHARE_OF_FLOOR:g}x the floor)"
            )
            + _versus_c(paced_posted_per_s, c_per_s)
        )
    approval_posted_per_s = run.approval.per_second(run.approval.posted)
    if c_per_s:
        print(
            f"  coordinator approval: posted/s {share(approval_posted_per_s, floor_per_s):.2f}x "
            f"floor, {share(approval_posted_per_s, c_per_s):.2f}x C floor"
        )
    print(f"  5xx answers: {server_errors} (target 0)")
    _print_by_kind(run.results)
    for result in [*run.history, *run.results]:
        for sample in result.error_samples:
            print(f"  {result.name}: error: {sample}")
    print(audit_line(run.audit))
    return {
        "floor_transfers_per_s": round(floor_per_s, 1),
        "c_floor_transfers_per_s": rounded(c_per_s, 1),
        "auto_posted_per_s": round(auto_posted_per_s, 1),
        "auto_ratio": round(ratio, 3),
        "auto_c_ratio": rounded(share(auto_posted_per_s, c_per_s), 3),
        "auto_p99_ms": p99,
        "approval_posted_per_s": round(approval_posted_per_s, 1),
        "approval_c_ratio": rounded(share(approval_posted_per_s, c_per_s), 3),
        "approval_p99_ms": run.approval.latency_ms(0.99),
        "server_errors": server_errors,  # of every phase, the paced one included
        "ledger_ok": run.audit.ok,
        # None when the paced phase did not run.
        "paced_offered_logs_per_s": round(run.offered_logs_per_s, 1) if paced else None,
        "paced_posted_per_s": round(paced.per_second(paced.posted), 1) if paced else None,
        "paced_ratio": round(paced_ratio, 3) if paced_ratio is not None else None,
        "paced_p99_ms": paced_p99,
        "paced_server_errors": paced.server_errors if paced else None,
    }


def _versus_c(posted_per_s: float, c_per_s: float | None) -> str:
    ratio = share(posted_per_s, c_per_s)
    return "" if ratio is None else f"; {ratio:.2f}x the C floor"
