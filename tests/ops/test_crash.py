"""`timebank serve` killed with SIGKILL under load, several times, and started again. Clients
log exchanges with idempotency keys and record every one acknowledged with 2xx. Afterwards
every acknowledged exchange is in the ledger exactly once, `timebank verify` is clean, and
retrying every request with its key creates nothing new (beyond the requests that were never
acknowledged, each of which the retry records exactly once)."""

from __future__ import annotations

import asyncio
import subprocess
import time

from tests.ops.server import TIMEBANK, Server, environment
from tests.ops.traffic import Traffic, exchanges_of, make_bank

KILLS = 3
CLIENTS = 8


async def _acknowledged_since(traffic: Traffic, since: float, count: int) -> None:
    deadline = time.monotonic() + 30
    while sum(s.acknowledged and s.started >= since for s in traffic.sent) < count:
        assert time.monotonic() < deadline, "the load made no progress"
        await asyncio.sleep(0.02)


async def test_acknowledged_exchanges_survive_sigkill_of_the_server(database_url, engine):
    bank = await make_bank(engine, members=6)
    server = Server(database_url)
    traffic = Traffic(bank, server.base_url)
    try:
        await server.start()
        clients = [asyncio.create_task(traffic.client(i, patience=10)) for i in range(CLIENTS)]
        for _ in range(KILLS):
            # Kill it mid-stream: after some acknowledgements, with requests in flight.
            await _acknowledged_since(traffic, time.monotonic(), 3 * CLIENTS)
            server.kill()
            await asyncio.sleep(0.2)  # clients find nobody listening meanwhile
            await server.start()
        await _acknowledged_since(traffic, time.monotonic(), 3 * CLIENTS)
        traffic.running = False
        await asyncio.gather(*clients)

        sent = traffic.sent
        assert {s.status for s in sent} <= {201, None}, "an answer other than 201 or none"
        assert any(s.status is None for s in sent), "no request was cut off by a kill"

        # Every acknowledged exchange is there, approved, once.
        stored = await exchanges_of(engine, bank.timebank.id)
        acknowledged = traffic.acknowledged()
        assert len(set(acknowledged.values())) == len(acknowledged)
        assert set(acknowledged.values()) <= set(stored)
        assert all(stored[i] == "approved" for i in acknowledged.values())

        # Retrying every request with its key creates nothing new: each names the exchange it
        # was acknowledged with, and every exchange stored is named by exactly one request.
        requests = traffic.requests()
        replays = await traffic.replay(requests)
        assert all(r.status == 201 for r in replays), {r.status for r in replays}
        assert all(r.exchange_id == acknowledged[r.key] for r in replays if r.key in acknowledged)
        assert await exchanges_of(engine, bank.timebank.id) == stored
        assert sorted(r.exchange_id for r in replays) == sorted(stored)
    finally:
        server.stop()

    verify = await asyncio.to_thread(
        subprocess.run,
        [*TIMEBANK, "verify", "--timebank", bank.timebank.slug],
        env=environment(database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "ledger OK" in verify.stdout
