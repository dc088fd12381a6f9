"""The database goes away under load and comes back. While it is away every API request is
answered promptly with 503 and Retry-After (never a hang, never a 500), /ready fails and
/health still answers; once it is back the service recovers by itself, with nothing
acknowledged lost and every request, retried with its key, recorded exactly once.

The test always runs its own embedded PostgreSQL (whatever TIMEBANK_TEST_DATABASE_URL says),
since it has to stop and start it."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.live import running_service
from tests.ops.traffic import Traffic, exchanges_of, make_bank
from timebank.db import embedded, migrations
from timebank.db.engine import create_engine
from timebank.ledger.audit import audit
from timebank.settings import Settings

CLIENTS = 8
PROMPT_SECONDS = 5.0  # the longest any answer may take, database or no database


@pytest.fixture
async def own_database() -> AsyncIterator[tuple[Path, str, AsyncEngine]]:
    data_dir = Path(tempfile.mkdtemp(prefix="timebank-faults-"))
    url = await asyncio.to_thread(embedded.start, data_dir, delete_on_exit=True)
    await migrations.upgrade_async(url)
    engine = create_engine(url, Settings())  # the service's engine: it survives the restart
    try:
        yield data_dir, url, engine
    finally:
        await engine.dispose()
        try:
            await asyncio.to_thread(embedded.stop, data_dir)
        except Exception:  # already stopped by a failed test: nothing left to stop
            pass
        shutil.rmtree(data_dir, ignore_errors=True)


async def _until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the load made no progress"
        await asyncio.sleep(0.05)


async def _status(http: httpx.AsyncClient, path: str) -> int:
    return (await http.get(path)).status_code


async def test_the_database_stops_and_starts_under_load(own_database):
    data_dir, url, engine = own_database
    bank = await make_bank(engine, members=6)
    settings = Settings(cookie_secure=False, db_connect_timeout=1.0, db_pool_timeout=2.0)
    with running_service(url, settings) as base_url:
        traffic = Traffic(bank, base_url)
        clients = [
            asyncio.create_task(traffic.client(i, patience=PROMPT_SECONDS * 2))
            for i in range(CLIENTS)
        ]
        async with httpx.AsyncClient(base_url=base_url, timeout=PROMPT_SECONDS * 2) as probe:
            await _until(lambda: sum(s.acknowledged for s in traffic.sent) >= 2 * CLIENTS)
            stopping = time.monotonic()
            await asyncio.to_thread(embedded.stop, data_dir)
            await asyncio.sleep(0.3)  # requests in flight at the stop have been answered
            down_from = time.monotonic()
            health_while_down = await _status(probe, "/health")
            ready_while_down = await _status(probe, "/ready")
            await asyncio.sleep(1.5)
            down_to = time.monotonic()

            await asyncio.to_thread(embedded.resume, data_dir)
            deadline = time.monotonic() + 20
            while await _status(probe, "/ready") != 200:
                assert time.monotonic() < deadline, "the service did not become ready again"
                await asyncio.sleep(0.1)
            recovered = time.monotonic()
            await _until(
                lambda: (
                    sum(s.acknowledged and s.started >= recovered for s in traffic.sent)
                    >= 2 * CLIENTS
                )
            )
            traffic.running = False
            await asyncio.gather(*clients)
            ready_after = await _status(probe, "/ready")
            replays = await traffic.replay(traffic.requests())

    sent = traffic.sent
    before_stop = [s for s in sent if s.started + s.seconds < stopping]
    assert before_stop, "no load before the database stopped"
    assert all(s.acknowledged for s in before_stop), "failures before the database stopped"

    # Never a 500, never a hang, never a dropped connection: only 2xx or 503 + Retry-After.
    statuses = {s.status for s in sent}
    assert statuses <= {201, 503}, f"unexpected answers: {statuses}"
    slowest = max(s.seconds for s in sent)
    assert slowest < PROMPT_SECONDS, f"an answer took {slowest:.1f} s"
    for s in sent:
        if s.status == 503:
            assert s.retry_after is not None and int(s.retry_after) > 0
            assert s.problem_type is not None and s.problem_type.endswith("/unavailable")

    # While it was down: 503s only, readiness failing, liveness answering.
    while_down = [s for s in sent if s.started >= down_from and s.started + s.seconds <= down_to]
    assert while_down, "no requests were made while the database was down"
    assert {s.status for s in while_down} == {503}
    assert health_while_down == 200
    assert ready_while_down == 503

    # Back again without a restart: readiness, and acknowledged exchanges after recovery.
    assert ready_after == 200
    after = [s for s in sent if s.started >= recovered]
    assert after and all(s.acknowledged for s in after), "failures after recovery"

    # Nothing acknowledged lost; every request, retried with its key, names one exchange, the
    # one it was acknowledged with; nothing is recorded twice.
    stored = await exchanges_of(engine, bank.timebank.id)
    acknowledged = traffic.acknowledged()
    assert set(acknowledged.values()) <= set(stored)
    assert all(stored[i] == "approved" for i in acknowledged.values())
    assert all(r.status == 201 for r in replays), {r.status for r in replays}
    for again in replays:
        if again.key in acknowledged:
            assert again.exchange_id == acknowledged[again.key]
    assert {r.exchange_id for r in replays} == set(stored)
    assert len(stored) == len(replays)
    async with engine.connect() as conn:
        report = await audit(conn, bank.timebank.slug)
    assert report.ok, report.findings
