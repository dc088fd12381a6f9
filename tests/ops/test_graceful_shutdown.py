"""`timebank serve` told to stop (SIGTERM, as `docker stop` and systemd send it) with a request
in flight: it stops taking new connections, lets the request finish and answers it, then exits.
A request still unanswered when the grace period ends is cut off with 503 and Retry-After.
Its write may still have committed, whole, or not at all (never half): the client cannot
know, so it retries with the same idempotency key, which records the exchange exactly once."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from datetime import date

import asyncpg
import httpx
import pytest

from tests.ops.server import Server
from tests.ops.traffic import make_bank
from timebank.db.engine import asyncpg_dsn


async def _waiting_on_a_lock(raw: asyncpg.Connection, timebank_pid: int) -> None:
    """Until a backend other than the lock holder waits for a row lock (the request, blocked
    on the account row the test holds)."""
    deadline = time.monotonic() + 20
    while not await raw.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND pid <> $1 AND datname = current_database()",
        timebank_pid,
    ):
        assert time.monotonic() < deadline, "the request never reached the database"
        await asyncio.sleep(0.05)


async def _log(http: httpx.AsyncClient, bank, key: str) -> httpx.Response:
    """Bea logs the help she received from Ada: under automatic approval it posts at once (a
    giver's own log would wait for the receiver's confirmation)."""
    ada, bea = bank.members[0], bank.members[1]
    return await http.post(
        bank.exchanges_path,
        json={
            "giver_id": ada.participant_id,
            "receiver_id": bea.participant_id,
            "minutes": 75,
            "service_date": date.today().isoformat(),
            "category": "gardening",
            "description": "Logged while the service was stopping",
        },
        headers={**bea.headers, "Idempotency-Key": key},
    )


async def _held_in_the_database(http: httpx.AsyncClient, bank, key: str, raw, holder):
    """Send a log request that waits in the database on the receiver's account, which
    ``holder`` keeps locked until the returned transaction ends; return it and the request."""
    lock = holder.transaction()
    await lock.start()
    await holder.execute(
        "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", bank.members[1].account_id
    )
    request = asyncio.create_task(_log(http, bank, key))
    await _waiting_on_a_lock(raw, holder.get_server_pid())
    return lock, request


async def _exchanges(raw: asyncpg.Connection, timebank_id: int) -> list[tuple[int, str]]:
    rows = await raw.fetch(
        "SELECT minutes, state FROM exchanges WHERE timebank_id = $1 ORDER BY id", timebank_id
    )
    return [tuple(row) for row in rows]


async def _balances(raw: asyncpg.Connection, bank) -> list[tuple[int, int, int]]:
    """(balance, pending in, pending out) of the giver's account, then the receiver's."""
    rows = [
        await raw.fetchrow(
            "SELECT balance, pending_in, pending_out FROM accounts WHERE id = $1", m.account_id
        )
        for m in bank.members[:2]
    ]
    return [tuple(row) for row in rows]


@pytest.fixture
async def holder(database_url):
    """A connection of the test's own, to hold a lock the request will wait for."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    yield conn
    await conn.close()


async def test_sigterm_lets_a_request_in_flight_finish_and_refuses_new_ones(
    database_url, engine, raw, holder
):
    bank = await make_bank(engine, members=2)
    server = Server(database_url, TIMEBANK_GRACEFUL_SHUTDOWN_SECONDS="30")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            lock, request = await _held_in_the_database(http, bank, uuid.uuid4().hex, raw, holder)

            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            # Stopping: the request is still waiting, and nobody new gets in.
            assert not request.done()
            assert server.process.poll() is None, server.output()
            with pytest.raises(httpx.TransportError):
                async with httpx.AsyncClient(timeout=2) as newcomer:
                    await newcomer.get(f"{server.base_url}/health")

            await lock.rollback()
            answer = await request
        assert answer.status_code == 201, answer.text
        assert answer.json()["state"] == "approved"
        code = await asyncio.to_thread(server.process.wait, 30)
        assert code == 128 + signal.SIGTERM, server.output()
    finally:
        server.stop()
    assert await _exchanges(raw, bank.timebank.id) == [(75, "approved")]


async def test_a_request_cut_off_at_the_end_of_the_grace_period_leaves_nothing_half_done(
    database_url, engine, raw, holder
):
    bank = await make_bank(engine, members=2)
    server = Server(database_url, TIMEBANK_GRACEFUL_SHUTDOWN_SECONDS="1")
    await server.start()
    key = uuid.uuid4().hex
    before = await _balances(raw, bank)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            lock, request = await _held_in_the_database(http, bank, key, raw, holder)
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            # The grace period (1 s) ends with the request still waiting: it is cut off.
            cut_off = await request
            assert cut_off.status_code == 503, cut_off.text
            assert cut_off.headers["retry-after"] == "2"
            assert cut_off.json()["type"].endswith("/unavailable")
            await asyncio.to_thread(server.process.wait, 30)
            await lock.rollback()
    finally:
        server.stop()

    # Its write, sent before the cut, may have run once the lock went: whole or not at all.
    deadline = time.monotonic() + 20
    while await raw.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
        " AND datname = current_database() AND state <> 'idle' AND pid <> $1",
        holder.get_server_pid(),
    ):
        assert time.monotonic() < deadline, "the cut-off request's backend never ended"
        await asyncio.sleep(0.1)
    stored = await _exchanges(raw, bank.timebank.id)
    after = await _balances(raw, bank)
    if stored:  # committed, whole: posted at once, nothing held back
        assert stored == [(75, "approved")]
        assert after == [(b + m, pi, po) for (b, pi, po), m in zip(before, (75, -75), strict=True)]
    else:  # or not at all
        assert after == before

    # The client retries with its key once the service is back: recorded once.
    again = Server(database_url)
    await again.start()
    try:
        async with httpx.AsyncClient(base_url=again.base_url, timeout=30) as http:
            first, retry = await _log(http, bank, key), await _log(http, bank, key)
    finally:
        again.stop()
    assert (first.status_code, retry.status_code) == (201, 201), first.text
    assert retry.json()["id"] == first.json()["id"]
    # Recorded before the cut: the first retry is a replay of it.
    assert first.headers["idempotent-replayed"] == ("true" if stored else "false")
    assert await _exchanges(raw, bank.timebank.id) == [(75, "approved")]
