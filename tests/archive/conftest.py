"""Fresh, empty databases to restore into: each made with CREATE DATABASE on the server the test
database lives on (the server named by TIMEBANK_TEST_DATABASE_URL, or the embedded one),
migrated, and dropped after the test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import _admin, _with_database
from timebank.db import migrations
from timebank.db.engine import sqlalchemy_url

FreshDatabase = Callable[[], Awaitable[tuple[str, AsyncEngine]]]


@pytest.fixture
async def fresh_database(database_url: str) -> AsyncIterator[FreshDatabase]:
    """Make a migrated, empty database: its URL and an engine on it."""
    made: list[tuple[str, AsyncEngine]] = []

    async def make() -> tuple[str, AsyncEngine]:
        name = f"timebank_restore_{uuid.uuid4().hex[:12]}"
        await _admin(database_url, f'CREATE DATABASE "{name}"')
        url = _with_database(database_url, name)
        await migrations.upgrade_async(url)
        engine = create_async_engine(sqlalchemy_url(url), pool_size=5)
        made.append((name, engine))
        return url, engine

    yield make
    for name, engine in made:
        await engine.dispose()
        await _admin(database_url, f'DROP DATABASE "{name}" WITH (FORCE)')
