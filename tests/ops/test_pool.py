"""The pool: connections are replaced after TIMEBANK_DB_CONNECTION_MAX_USES requests, so no
PostgreSQL backend serves for ever (long-serving backends were measured to grow slower); and
requests that wait for a connection get one in the order they asked."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.util.concurrency import greenlet_spawn

from timebank.db.engine import create_engine
from timebank.db.pool import FairQueue
from timebank.db.transactions import raw_connection
from timebank.settings import Settings


async def _backends(settings: Settings, database_url: str, uses: int) -> list[int]:
    engine = create_engine(database_url, settings)
    try:
        seen = []
        for _ in range(uses):
            async with raw_connection(engine) as conn:
                seen.append(await conn.fetchval("SELECT pg_backend_pid()"))
        return seen
    finally:
        await engine.dispose()


async def test_a_connection_is_replaced_after_its_uses(database_url):
    settings = Settings(db_pool_size=1, db_max_overflow=0, db_connection_max_uses=3)
    backends = await _backends(settings, database_url, 7)
    assert len(set(backends[0:3])) == len(set(backends[3:6])) == 1
    assert len({backends[0], backends[3], backends[6]}) == 3, backends


async def test_no_limit_keeps_the_connection(database_url):
    settings = Settings(db_pool_size=1, db_max_overflow=0, db_connection_max_uses=0)
    assert len(set(await _backends(settings, database_url, 7))) == 1


async def test_waiting_requests_get_connections_in_the_order_they_asked(database_url):
    """One connection, three requests waiting for it. When its holder gives it back and at
    once asks again, the waiters are served first, in order, and the holder after them: no
    request is passed over by later ones."""
    settings = Settings(db_pool_size=1, db_max_overflow=0, db_pool_timeout=10)
    engine = create_engine(database_url, settings)
    served: list[str] = []
    holding = asyncio.Event()
    release = asyncio.Event()

    async def use(name: str) -> None:
        async with raw_connection(engine) as conn:
            served.append(name)
            await conn.fetchval("SELECT 1")

    async def holder() -> None:
        async with raw_connection(engine):
            holding.set()
            await release.wait()
        await use("holder again")  # asks again straight away, before any waiter has run

    try:
        first = asyncio.create_task(holder())
        await holding.wait()
        waiters = []
        for name in ("first waiter", "second waiter", "third waiter"):
            waiters.append(asyncio.create_task(use(name)))
            await asyncio.sleep(0.05)  # each is waiting before the next one asks
        release.set()
        await asyncio.wait_for(asyncio.gather(first, *waiters), 10)
        assert served == ["first waiter", "second waiter", "third waiter", "holder again"]
    finally:
        await engine.dispose()


async def test_a_request_that_gives_up_waiting_loses_no_connection(database_url):
    """A request that waited past TIMEBANK_DB_POOL_TIMEOUT gets the pool's timeout (answered
    503); the connection it never got still serves the next request."""
    settings = Settings(db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.2)
    engine = create_engine(database_url, settings)
    try:
        async with raw_connection(engine) as conn:
            with pytest.raises(sa_exc.TimeoutError):
                async with raw_connection(engine):
                    pass
            assert await conn.fetchval("SELECT 1") == 1
        for _ in range(3):
            async with raw_connection(engine) as conn:
                assert await conn.fetchval("SELECT 2") == 2
        assert engine.sync_engine.pool.checkedout() == 0
    finally:
        await engine.dispose()


async def test_a_connection_handed_to_a_request_cancelled_meanwhile_is_not_lost():
    """A waiting request is handed a connection and cancelled before it runs again, while the
    other connection comes back too: both connections stay with the pool."""
    queue: FairQueue[str] = FairQueue(maxsize=1)
    waiting = asyncio.create_task(greenlet_spawn(queue.get, True, 5))
    await asyncio.sleep(0.01)  # it is waiting now
    queue.put_nowait("first")  # handed to the waiter, which has not run yet
    waiting.cancel()
    queue.put_nowait("second")  # nobody waits now: among the idle ones
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert {queue.get_nowait(), queue.get_nowait()} == {"first", "second"}
