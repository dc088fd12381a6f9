"""Load: the whole service over HTTP, beside the raw-SQL floor of the ledger measured in the
same run, on a fresh embedded PostgreSQL.

The service runs as it does in production: ``timebank serve`` in processes of its own
(uvicorn, ``--workers``), on the same machine as this load generator and the database. Two
timebanks are built straight into the database: one that approves every exchange
automatically, with many members, and one where the other party confirms and a coordinator
approves. Then, for a fixed time each, many concurrent simulated clients (an asyncio task
each, with a keep-alive HTTP connection of its own, see ``timebank.bench.http_client``):

- auto-approve: members log exchanges they gave to another member (each is posted at once),
  and now and then read their balance (one step in ten) or their own line of the reciprocity
  report (one in fifty);
- auto-approve at 0.2x the floor (paced): the same clients and mix, each stepping at the
  arrivals of a Poisson process of its own, so that logs are offered at 0.2 times the floor's
  transfers/s in all (reads on top at their share; ``--paced-at`` offers another share);
- coordinator approval: a member logs, the other party confirms, a coordinator approves, and
  now and then (one round in fifty) a coordinator reads the timebank's contribution report.

The output counts the requests of each kind, so the share of reads is there to see.

Before anything is measured, both timebanks are given a history: their clients run for a few
seconds, unmeasured, and then the database is vacuumed and analyzed (as it is again before
each phase). A timebank in use has one, and without it the service's connections would plan
their statements on empty exchange tables. PostgreSQL then caches plans that read those
tables whole (the foreign key checks on exchanges, for one), and each of those reads grows
with every exchange logged until autovacuum's next ANALYZE replans them, up to a minute
later: longer than a phase. ANALYZE makes every connection plan its statements again.

Why the paced phase: the others are closed loops without think time, so every client always
has a request queued and latency is just clients / throughput, whatever the service does.
The target (posted/s >= 0.2x the floor with p99 <= 150 ms at 64 clients) asks how fast the
service answers at that rate, so that phase offers exactly it; a lower share shows the latency
at a rate the service sustains. Its latency counts
from when each request was due, not when it was sent: a client behind schedule sends at once
and the wait counts, so a slow answer cannot hide the requests it held back (no coordinated
omission).

Every request carries an idempotency key where the API takes one. A "posted exchange" is one
whose minutes moved: a logged exchange answered ``approved`` (auto-approve), or an approval
(coordinator approval). Latency is that of every request of the phase, as the client saw it
(in the paced phase, from when the request was due).
The floor is phase a of ``timebank bench ledger``: plain asyncpg connections writing one
transfer per transaction with the fewest statements the schema allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.auth import repository as auth_repository
from timebank.auth.secrets import new_token
from timebank.bench import ledger as ledger_bench
from timebank.bench.http_client import Connection, HttpError, Response
from timebank.db import migrations
from timebank.db.engine import asyncpg_dsn, create_engine
from timebank.ledger.audit import audit
from timebank.participants.schemas import TimebankPolicy, TimebankRecord
from timebank.participants.service import Participants
from timebank.settings import Settings

AUTO_APPROVE = TimebankPolicy(
    default_floor_minutes=-10_000_000,
    default_ceiling_minutes=10_000_000,
    max_exchange_minutes=480,
    confirmation_required=False,
    approval_mode="automatic",
)
COORDINATOR_APPROVAL = AUTO_APPROVE.model_copy(
    update={"confirmation_required": True, "approval_mode": "coordinator"}
)
FLOOR_CLIENTS = 16
# Seconds each timebank's clients log before anything is measured (at most a phase's length).
HISTORY_SECONDS = 3.0
MAX_ERRORS_SHOWN = 3
# The auto-approve mix: one step in ten reads a balance, one in fifty the report, the rest log.
BALANCE_SHARE = 0.10
REPORT_SHARE = 0.02
LOG_SHARE = 1 - BALANCE_SHARE - REPORT_SHARE
# The target: posted exchanges/s at least this share of the floor's transfers/s, ...
TARGET_SHARE_OF_FLOOR = 0.2
# ... with p99 latency at most this, at 64 concurrent clients.
TARGET_P99_MS = 150


@dataclass
class Member:
    participant_id: int
    headers: dict[str, str]


@dataclass
class Bank:
    slug: str
    members: list[Member]
    coordinators: list[dict[str, str]] = field(default_factory=list)


@dataclass
class PhaseResult:
    name: str
    requests: int = 0
    posted: int = 0
    errors: int = 0
    server_errors: int = 0
    elapsed: float = 0.0
    service_cpu: float = 0.0
    database_cpu: float = 0.0
    client_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)
    error_samples: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    kind_latencies: dict[str, list[float]] = field(default_factory=dict, repr=False)
    missed: int = 0  # paced steps due before the end but never sent (see _Recorder.missed)

    def cpu_ms_per_request(self, seconds: float) -> float | None:
        return 1000 * seconds / self.requests if self.requests and seconds > 0 else None

    def per_second(self, count: int) -> float:
        return count / self.elapsed if self.elapsed > 0 else 0.0

    def latency_ms(self, quantile: float) -> float | None:
        if len(self.latencies) < 2:
            return None
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return 1000 * cuts[round(quantile * 100) - 1]


class _Recorder:
    """Counts one phase's requests once the warm-up is over."""

    def __init__(self, result: PhaseResult) -> None:
        self.result = result
        self.counting = False

    async def call(
        self,
        http: Connection,
        method: str,
        path: str,
        headers: dict[str, str],
        body: dict | None = None,
        *,
        kind: str,
        due: float | None = None,
    ) -> Response | None:
        """One request; its latency counts from ``due`` (a ``perf_counter`` time) if given,
        else from now."""
        started = time.perf_counter() if due is None else due
        try:
            response = await http.request(method, path, headers, body)
        except HttpError as error:
            # A request that got no answer counts too, with how long it took to fail (a
            # timeout must not drop out of the p99).
            self._count(kind, started)
            self._error(f"{method} {path}: {error}", server=True)  # says what failed
            return None
        self._count(kind, started)
        if response.status >= 400:
            self._error(
                f"{method} {path}: {response.status} {response.text[:200]}",
                server=response.status >= 500,
            )
            return None
        return response

    def posted(self) -> None:
        if self.counting:
            self.result.posted += 1

    def _count(self, kind: str, started: float) -> None:
        if self.counting:
            self.result.requests += 1
            self.result.kinds[kind] += 1
            elapsed = time.perf_counter() - started
            self.result.latencies.append(elapsed)
            self.result.kind_latencies.setdefault(kind, []).append(elapsed)

    def missed(self, due: float) -> None:
        """A paced step that was due before the end of the phase but never sent: its client
        was still waiting for earlier answers. It counts in the latencies with its wait so
        far (a lower bound), so a backlog cannot make the p99 look better."""
        if self.counting:
            self.result.missed += 1
            self.result.latencies.append(time.perf_counter() - due)

    def _error(self, sample: str, *, server: bool) -> None:
        if not self.counting:
            return
        self.result.errors += 1
        self.result.server_errors += server
        if len(self.result.error_samples) < MAX_ERRORS_SHOWN:
            self.result.error_samples.append(sample)


# ------------------------------------------------------------------------------------------
# Building the timebanks
# ------------------------------------------------------------------------------------------


async def _person(
    engine: AsyncEngine, timebank: TimebankRecord, label: str, role: str, participant_id: int | None
) -> dict[str, str]:
    """A user with an API token and ``role`` in the timebank (linked to the participant)."""
    secret, token_hash = new_token()
    async with engine.begin() as conn:
        user_id = await auth_repository.insert_user(
            conn,
            email=f"{label}-{uuid.uuid4().hex[:8]}@load.example.org",
            display_name=label,
            password_hash=None,  # signs in with its token only
        )
        await auth_repository.insert_token(
            conn,
            user_id=user_id,
            kind="api",
            name="load",
            token_hash=token_hash,
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
        await auth_repository.grant_role(conn, timebank.id, user_id, role)
        if participant_id is not None:
            await conn.execute(
                text("UPDATE participants SET user_id = :user_id WHERE id = :id"),
                {"user_id": user_id, "id": participant_id},
            )
    return {"Authorization": f"Bearer {secret}"}


async def _build_bank(
    engine: AsyncEngine, slug: str, policy: TimebankPolicy, members: int, coordinators: int
) -> Bank:
    participants = Participants(engine)
    timebank = await participants.create_timebank(slug, f"Load {slug}", policy)
    gate = asyncio.Semaphore(8)

    async def member(i: int) -> Member:
        async with gate:
            participant = await participants.enrol(timebank, "member", f"Member {i}")
            headers = await _person(engine, timebank, f"m{i}", "member", participant.id)
            return Member(participant.id, headers)

    async def coordinator(i: int) -> dict[str, str]:
        async with gate:
            return await _person(engine, timebank, f"c{i}", "coordinator", None)

    bank = Bank(slug, list(await asyncio.gather(*(member(i) for i in range(members)))))
    bank.coordinators = list(await asyncio.gather(*(coordinator(i) for i in range(coordinators))))
    return bank


# ------------------------------------------------------------------------------------------
# The service, in processes of its own
# ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def _serving(
    url: str, *, workers: int, pool_size: int, access_log: bool, log_path: Path
) -> AsyncIterator[tuple[str, int]]:
    """``timebank serve`` on a free port; yields its base URL and process id once it is
    ready."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env.update(
        TIMEBANK_DATABASE_URL=url,
        TIMEBANK_WORKERS=str(workers),
        TIMEBANK_DB_POOL_SIZE=str(pool_size),
        TIMEBANK_DB_MAX_OVERFLOW="0",  # a fixed pool: no connections opened and closed per burst
        TIMEBANK_ACCESS_LOG="true" if access_log else "false",
    )
    with log_path.open("wb") as log:
        server = subprocess.Popen(  # noqa: ASYNC220, S603 - our own command
            [sys.executable, "-m", "timebank.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
            deadline = time.monotonic() + 120
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"the service exited; see {log_path}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/ready")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not become ready; see {log_path}")
                await asyncio.sleep(0.1)
        yield base_url, server.pid
    finally:
        server.terminate()
        try:
            await asyncio.to_thread(server.wait, 60)
        except subprocess.TimeoutExpired:
            server.kill()


# ------------------------------------------------------------------------------------------
# The simulated clients
# ------------------------------------------------------------------------------------------


def _exchange(giver: Member, receiver: Member, rng: random.Random) -> dict[str, Any]:
    return {
        "giver_id": giver.participant_id,
        "receiver_id": receiver.participant_id,
        "minutes": rng.randint(15, 240),
        "service_date": (date.today() - timedelta(days=rng.randint(0, 20))).isoformat(),
        "category": rng.choice(("gardening", "befriending", "lifts", "cooking")),
        "description": "Load test",
    }


def _two(members: list[Member], rng: random.Random) -> tuple[Member, Member]:
    giver, receiver = rng.sample(members, 2)
    return giver, receiver


def _key(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Idempotency-Key": uuid.uuid4().hex}


# A simulated client's step: (connection, recorder, its random generator, when the step was
# due on a paced schedule or None).
Client = Callable[[Connection, _Recorder, random.Random, float | None], Awaitable[None]]


def _auto_approve_client(bank: Bank) -> Client:
    base = f"/api/v1/timebanks/{bank.slug}"

    async def step(http: Connection, rec: _Recorder, rng: random.Random, due: float | None) -> None:
        giver, receiver = _two(bank.members, rng)
        roll = rng.random()
        if roll < BALANCE_SHARE:
            await rec.call(
                http,
                "GET",
                f"{base}/participants/{giver.participant_id}/balance",
                giver.headers,
                kind="balance",
                due=due,
            )
        elif roll < BALANCE_SHARE + REPORT_SHARE:
            await rec.call(
                http,
                "GET",
                f"{base}/reports/reciprocity",
                giver.headers,
                kind="report",
                due=due,
            )
        else:
            response = await _log(http, rec, base, giver, receiver, rng, due)
            if response is not None and response.json()["state"] == "approved":
                rec.posted()

    return step


async def _log(
    http: Connection,
    rec: _Recorder,
    base: str,
    giver: Member,
    receiver: Member,
    rng: random.Random,
    due: float | None,
) -> Response | None:
    """The receiver logs the help they had from ``giver``, with an idempotency key of its own
    (a receiver's own log needs no confirmation where the policy asks none; a giver's would
    wait for the receiver, since it takes minutes from them)."""
    return await rec.call(
        http,
        "POST",
        f"{base}/exchanges",
        _key(receiver.headers),
        _exchange(giver, receiver, rng),
        kind="log",
        due=due,
    )


def _coordinator_approval_client(bank: Bank) -> Client:
    base = f"/api/v1/timebanks/{bank.slug}"

    async def step(http: Connection, rec: _Recorder, rng: random.Random, due: float | None) -> None:
        coordinator = rng.choice(bank.coordinators)
        if rng.random() < 0.02:
            await rec.call(
                http, "GET", f"{base}/reports/contribution", coordinator, kind="report", due=due
            )
            return
        giver, receiver = _two(bank.members, rng)
        logged = await _log(http, rec, base, giver, receiver, rng, due)
        if logged is None:
            return
        exchange = f"{base}/exchanges/{logged.json()['id']}"
        confirmed = await rec.call(
            http, "POST", f"{exchange}/confirm", giver.headers, {}, kind="confirm"
        )
        if confirmed is None:
            return
        approved = await rec.call(
            http, "POST", f"{exchange}/approve", coordinator, {}, kind="approve"
        )
        if approved is not None and approved.json()["state"] == "approved":
            rec.posted()

    return step


@dataclass(frozen=True)
class _Clocks:
    """CPU seconds used so far by the service's processes and by PostgreSQL's."""

    service: ledger_bench.CpuClock
    database: ledger_bench.CpuClock


def _process_tree_clock(pid: int) -> ledger_bench.CpuClock:
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


async def _run_phase(
    name: str,
    base_url: str,
    step: Client,
    *,
    clients: int,
    warmup: float,
    seconds: float,
    clocks: _Clocks,
    steps_per_s_per_client: float | None = None,
) -> PhaseResult:
    """Closed loop (each client steps again as soon as its last step is answered), or, given
    ``steps_per_s_per_client``, paced: each client steps at the arrivals of a Poisson process
    of that rate."""
    result = PhaseResult(name)
    recorder = _Recorder(result)
    stop_at = time.perf_counter() + warmup + seconds
    server = urlsplit(base_url)
    host, port = server.hostname or "127.0.0.1", server.port or 80

    async def loop(index: int) -> None:
        # One keep-alive connection per simulated person, as on real phones.
        rng = random.Random(index)  # noqa: S311 - load generation, not security
        async with Connection(host, port) as http:
            if steps_per_s_per_client is None:
                while time.perf_counter() < stop_at:
                    await step(http, recorder, rng, None)
                return
            # Exponential gaps from a generator of the client's own. A client behind schedule
            # steps at once, and the wait counts in the latency (measured from when the step
            # was due), so a slow answer cannot hide the requests it held back.
            gaps = random.Random(f"gaps {index}")  # noqa: S311 - load generation
            due = time.perf_counter()
            while True:
                due += gaps.expovariate(steps_per_s_per_client)
                now = time.perf_counter()
                if due >= stop_at:
                    break
                if now >= stop_at:  # behind schedule at the end: the rest were never sent
                    recorder.missed(due)
                    continue
                if due > now:
                    await asyncio.sleep(due - now)
                await step(http, recorder, rng, due)

    tasks = [asyncio.create_task(loop(i)) for i in range(clients)]
    await asyncio.sleep(warmup)
    recorder.counting = True
    service_cpu, database_cpu, client_cpu = (
        clocks.service(),
        clocks.database(),
        time.process_time(),
    )
    started = time.perf_counter()
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - started
    result.service_cpu = clocks.service() - service_cpu
    result.database_cpu = clocks.database() - database_cpu
    result.client_cpu = time.process_time() - client_cpu
    return result


# ------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------


def _cell(value: float | None, width: int, digits: int = 1) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


_HEADER = (
    f"  {'phase':<40}{'requests':>9}{'req/s':>8}{'posted':>8}{'posted/s':>9}"
    f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'errors':>7}{'5xx':>5}{'vs floor':>9}"
)


def _row(result: PhaseResult, floor_per_s: float) -> str:
    posted_per_s = result.per_second(result.posted)
    return (
        f"  {result.name:<40}{result.requests:>9}{result.per_second(result.requests):>8.0f}"
        f"{result.posted:>8}{posted_per_s:>9.1f}"
        f"{_cell(result.latency_ms(0.50), 8)}{_cell(result.latency_ms(0.95), 8)}"
        f"{_cell(result.latency_ms(0.99), 8)}{result.errors:>7}{result.server_errors:>5}"
        f"{posted_per_s / floor_per_s if floor_per_s else 0:>9.2f}"
    )


async def run_load_benchmark(
    *,
    clients: int,
    seconds: float,
    members: int,
    workers: int,
    pool_size: int,
    access_log: bool = True,
    paced: bool = True,
    paced_share: float = TARGET_SHARE_OF_FLOOR,
) -> dict[str, Any]:
    """Measure the floor, then drive the service with both kinds of timebank; print a table
    and return the figures."""
    if clients < 1 or seconds <= 0 or members < 2 or workers < 1 or pool_size < 1:
        raise ValueError("need clients >= 1, seconds > 0, members >= 2, workers and pool >= 1")
    warmup = min(2.0, max(0.5, seconds / 5))
    run = f"({warmup:g} s warm-up, {seconds:g} s)"
    work_dir = Path(tempfile.mkdtemp(prefix="timebank-load-"))

    print("starting a fresh embedded PostgreSQL and migrating it ...", flush=True)
    url = await asyncio.to_thread(ledger_bench._start_server)
    await migrations.upgrade_async(url)
    dsn = asyncpg_dsn(url)
    version, postmaster_pid = await ledger_bench._server_facts(dsn)
    database_clock = ledger_bench._server_cpu_clock(postmaster_pid) or (lambda: 0.0)

    engine = create_engine(url, Settings(database_url=url, db_pool_size=8, db_max_overflow=8))
    try:
        floor_accounts = max(2 * FLOOR_CLIENTS, members)
        print(f"phase a:  raw SQL transfers, the floor, {FLOOR_CLIENTS} connections {run} ...")
        timebank_id, account_ids = await ledger_bench._create_ledger(
            Participants(engine), dsn, floor_accounts
        )
        await ledger_bench._seed_history(dsn, timebank_id, account_ids, 4 * floor_accounts)
        await ledger_bench._settle(dsn)
        floor = await ledger_bench._phase_raw(
            "floor: raw SQL transfers",
            dsn,
            timebank_id,
            account_ids,
            function=False,
            clients=FLOOR_CLIENTS,
            timing=ledger_bench._Timing(warmup, seconds, None),
            seed=1000,
        )
        offered_logs_per_s = paced_share * floor.per_second
        approval_members = max(2, members // 5)
        coordinators = max(1, clients // 16)
        print(
            f"building an auto-approving timebank of {members} members and one with "
            f"coordinator approval ({approval_members} members, {coordinators} coordinators) ..."
        )
        auto = await _build_bank(engine, "load-auto", AUTO_APPROVE, members, 0)
        approval = await _build_bank(
            engine, "load-approval", COORDINATOR_APPROVAL, approval_members, coordinators
        )
        await ledger_bench._settle(dsn)

        # The load generator's own full garbage collections would stop every simulated client
        # at once (up to 85 ms was timed) and count as the service's latency: what it has built
        # so far (the timebanks' members and their headers) is frozen out of them.
        gc.collect()
        gc.freeze()
        log_path = work_dir / "service.log"
        print(f"starting the service: {workers} worker(s), pool {pool_size} each; log {log_path}")
        async with _serving(
            url, workers=workers, pool_size=pool_size, access_log=access_log, log_path=log_path
        ) as (base_url, service_pid):
            clocks = _Clocks(_process_tree_clock(service_pid), database_clock)
            history_seconds = min(HISTORY_SECONDS, seconds)
            print(
                f"history:  both timebanks log exchanges for {history_seconds:g} s each "
                "(not measured), then the database is vacuumed and analyzed ...",
                flush=True,
            )
            history = [
                await _run_phase(
                    "history",
                    base_url,
                    make_client(bank),
                    clients=clients,
                    warmup=0,
                    seconds=history_seconds,
                    clocks=clocks,
                )
                for make_client, bank in (
                    (_auto_approve_client, auto),
                    (_coordinator_approval_client, approval),
                )
            ]
            await ledger_bench._settle(dsn)
            print(f"phase b:  auto-approve, {clients} clients {run} ...", flush=True)
            auto_result = await _run_phase(
                "auto-approve (log; balance, report reads)",
                base_url,
                _auto_approve_client(auto),
                clients=clients,
                warmup=warmup,
                seconds=seconds,
                clocks=clocks,
            )
            paced_result = None
            if paced and floor.per_second > 0:
                await ledger_bench._settle(dsn)
                print(
                    f"phase b2: auto-approve paced at {offered_logs_per_s:.0f} logs/s "
                    f"({paced_share:g}x the floor), {clients} clients {run} ...",
                    flush=True,
                )
                paced_result = await _run_phase(
                    f"auto-approve at {paced_share:g}x the floor (paced)",
                    base_url,
                    _auto_approve_client(auto),
                    clients=clients,
                    warmup=warmup,
                    seconds=seconds,
                    clocks=clocks,
                    steps_per_s_per_client=offered_logs_per_s / LOG_SHARE / clients,
                )
            await ledger_bench._settle(dsn)
            print(f"phase c:  coordinator approval, {clients} clients {run} ...", flush=True)
            approval_result = await _run_phase(
                "coordinator approval (log, confirm, approve)",
                base_url,
                _coordinator_approval_client(approval),
                clients=clients,
                warmup=warmup,
                seconds=seconds,
                clocks=clocks,
            )
        async with engine.connect() as conn:
            report = await audit(conn)
    finally:
        gc.unfreeze()
        await engine.dispose()

    floor_per_s = floor.per_second
    results = [auto_result, *([paced_result] if paced_result else []), approval_result]
    ratio = auto_result.per_second(auto_result.posted) / floor_per_s if floor_per_s else 0.0
    p99 = auto_result.latency_ms(0.99)
    # The history's answers count too: a 5xx there is a 5xx.
    server_errors = sum(result.server_errors for result in [*history, *results])
    print()
    print("Load benchmark: the service over HTTP against the raw-SQL floor, same run")
    print(
        f"  PostgreSQL {version}; {os.cpu_count()} CPU(s) shared by database, service and load "
        f"generator; {workers} worker(s), pool {pool_size} each; {clients} clients; "
        f"{seconds:g} s per phase after a {warmup:g} s warm-up"
    )
    print(
        f"  auto-approve timebank: {members} members; coordinator approval: {approval_members} "
        f"members, {coordinators} coordinators; access log {'on' if access_log else 'off'}"
    )
    print(
        f"  history before measuring: {history[0].requests} requests to the auto-approve and "
        f"{history[1].requests} to the coordinator-approval timebank ({history_seconds:g} s "
        "each); the database vacuumed and analyzed before each phase"
    )
    if paced_result:
        print(
            f"  paced phase: Poisson arrivals per client, {offered_logs_per_s:.1f} logs/s "
            f"offered in all ({paced_share:g}x the floor) plus reads at their share, "
            f"{offered_logs_per_s / LOG_SHARE:.1f} requests/s; latency from each request's "
            "scheduled time"
        )
    print()
    print(_HEADER)
    floor_p99 = floor.latency_ms(0.99)
    print(
        f"  {'floor: raw SQL transfers (16 conns)':<40}{floor.transfers:>9}"
        f"{floor.per_second:>8.0f}{floor.transfers:>8}{floor.per_second:>9.1f}"
        f"{_cell(floor.latency_ms(0.50), 8)}{_cell(floor.latency_ms(0.95), 8)}"
        f"{_cell(floor_p99, 8)}{floor.errors:>7}{'-':>5}{1:>9.2f}"
    )
    for result in results:
        print(_row(result, floor_per_s))
    print()
    print(
        f"  targets: posted exchanges/s >= {TARGET_SHARE_OF_FLOOR:.2f}x floor transfers/s, "
        f"p99 <= {TARGET_P99_MS} ms, no 5xx"
    )
    print(
        f"  auto-approve, saturated ({clients} clients, no think time): posted/s {ratio:.2f}x "
        f"floor, p99 {_cell(p99, 0)} ms (this latency is the queue: clients / throughput)"
    )
    paced_ratio = paced_p99 = None
    if paced_result:
        paced_posted_per_s = paced_result.per_second(paced_result.posted)
        paced_ratio = paced_posted_per_s / floor_per_s
        paced_p99 = paced_result.latency_ms(0.99)
        print(
            f"  auto-approve paced at {paced_share:g}x floor: posted/s "
            f"{paced_ratio:.2f}x (offered {offered_logs_per_s:.1f}/s, posted "
            f"{paced_posted_per_s:.1f}/s), p99 {_cell(paced_p99, 0)} ms "
            + (
                f"counting {paced_result.missed} step(s) due but never sent, with their wait "
                if paced_result.missed
                else ""
            )
            + (
                f"(target <= {TARGET_P99_MS} ms)"
                if paced_share == TARGET_SHARE_OF_FLOOR
                else f"(the target is at {TARGET_SHARE_OF_FLOOR:g}x the floor)"
            )
        )
    print(f"  5xx answers: {server_errors} (target 0)")
    print("  CPU ms per request (service processes / PostgreSQL / this load generator):")
    for result in results:
        cells = [
            _cell(result.cpu_ms_per_request(cpu), 0, 2)
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
    for result in [*history, *results]:
        for sample in result.error_samples:
            print(f"  {result.name}: error: {sample}")
    print(
        f"  audit: {report.timebanks} timebank(s), {report.accounts} accounts, "
        f"{report.transfers} transfers, {report.postings} postings: "
        + ("ledger verified clean" if report.ok else f"{len(report.findings)} problem(s) found")
    )
    return {
        "floor_transfers_per_s": round(floor_per_s, 1),
        "auto_posted_per_s": round(auto_result.per_second(auto_result.posted), 1),
        "auto_ratio": round(ratio, 3),
        "auto_p99_ms": p99,
        "approval_posted_per_s": round(approval_result.per_second(approval_result.posted), 1),
        "approval_p99_ms": approval_result.latency_ms(0.99),
        "server_errors": server_errors,  # of every phase, the paced one included
        "ledger_ok": report.ok,
        # None when the paced phase did not run.
        "paced_offered_logs_per_s": round(offered_logs_per_s, 1) if paced_result else None,
        "paced_posted_per_s": (
            round(paced_result.per_second(paced_result.posted), 1) if paced_result else None
        ),
        "paced_ratio": round(paced_ratio, 3) if paced_ratio is not None else None,
        "paced_p99_ms": paced_p99,
        "paced_server_errors": paced_result.server_errors if paced_result else None,
    }
