"""Pooled connections are replaced after TIMEBANK_DB_CONNECTION_MAX_USES requests, so no
PostgreSQL backend serves for ever (long-serving backends were measured to grow slower)."""

from __future__ import annotations

from timebank.db.engine import create_engine
from timebank.ledger.service import raw_connection
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
