"""One phase of the load benchmark: the service started in processes of its own, simulated
clients stepping in a closed loop or paced, and what their requests met, counted once the
warm-up is over."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from timebank.bench.harness import CpuClock, Measured
from timebank.bench.http_client import Connection, HttpError, Response

MAX_ERRORS_SHOWN = 3


@dataclass
class PhaseResult(Measured):
    """What one phase's requests met, of every kind, and the CPU the service, the database and
    this load generator used for them."""

    requests: int = 0
    posted: int = 0
    server_errors: int = 0
    service_cpu: float = 0.0
    database_cpu: float = 0.0
    error_samples: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    kind_latencies: dict[str, list[float]] = field(default_factory=dict, repr=False)
    missed: int = 0  # paced steps due before the end but never sent (see Recorder.missed)

    def cpu_ms_per_request(self, seconds: float) -> float | None:
        return 1000 * seconds / self.requests if self.requests and seconds > 0 else None

    def per_second(self, count: int) -> float:
        return self.rate(count)


class Recorder:
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
# The service, in processes of its own
# ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(
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


# A simulated client's step: (connection, recorder, its random generator, when the step was
# due on a paced schedule or None).
Client = Callable[[Connection, Recorder, random.Random, float | None], Awaitable[None]]


@dataclass(frozen=True)
class Clocks:
    """CPU seconds used so far by the service's processes and by PostgreSQL's."""

    service: CpuClock
    database: CpuClock


async def run_phase(
    name: str,
    base_url: str,
    step: Client,
    *,
    clients: int,
    warmup: float,
    seconds: float,
    clocks: Clocks,
    steps_per_s_per_client: float | None = None,
) -> PhaseResult:
    """Closed loop (each client steps again as soon as its last step is answered), or, given
    ``steps_per_s_per_client``, paced: each client steps at the arrivals of a Poisson process
    of that rate."""
    result = PhaseResult(name)
    recorder = Recorder(result)
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
