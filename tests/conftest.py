"""Tests run on real PostgreSQL: an embedded server started for the session, or the server
named by TIMEBANK_TEST_DATABASE_URL (a fresh database is created on it and dropped after).
Each test works in a timebank of its own, so tests never see each other's rows."""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from timebank.app import create_app
from timebank.db import embedded, migrations
from timebank.db.engine import asyncpg_dsn, sqlalchemy_url
from timebank.ledger import Ledger
from timebank.participants.schemas import TimebankPolicy, TimebankRecord
from timebank.participants.service import Participants
from timebank.settings import Settings

_slugs = itertools.count(1)


def _with_database(url: str, name: str) -> str:
    base, _, query = sqlalchemy_url(url).partition("?")
    server = base.rsplit("/", 1)[0]
    return f"{server}/{name}" + (f"?{query}" if query else "")


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="run only the tests that use the test database (the rest, such as the benchmarks "
        "on their own embedded servers, do the same whichever database is named)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--database-tests-only"):
        return
    kept = [item for item in items if "database_url" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    server_url = Settings().test_database_url
    if server_url:
        name = f"timebank_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
        url = _with_database(server_url, name)
        migrations.upgrade(url)
        yield url
        asyncio.run(_admin(server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))
    else:
        # Not under pytest's tmp_path: pytest prunes old numbered folders while another run
        # may still be using one. The server deletes its own folder when the session ends.
        data_dir = Path(tempfile.mkdtemp(prefix="timebank-test-"))
        url = embedded.start(data_dir, delete_on_exit=True)
        migrations.upgrade(url)
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(sqlalchemy_url(database_url), pool_size=20, max_overflow=20)
    yield engine
    await engine.dispose()


@pytest.fixture
async def raw(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain asyncpg connection as the database superuser, bypassing the service."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    yield conn
    await conn.close()


@pytest.fixture
def ledger(engine: AsyncEngine) -> Ledger:
    return Ledger(engine)


@pytest.fixture
def participants(engine: AsyncEngine) -> Participants:
    return Participants(engine)


def unique_slug(prefix: str = "tb") -> str:
    return f"{prefix}-{os.getpid()}-{next(_slugs)}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient]:
    """The whole service over HTTP (in process), on the test database."""
    # Reports count up to "now" in tests (in service they stay a few seconds behind).
    settings = Settings(cookie_secure=False, report_settle_seconds=0)
    app = create_app(settings, database_url=database_url)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def world(engine: AsyncEngine):
    """Two timebanks with an admin, a coordinator, two members and a funder in the first, and
    a member and a coordinator of the second (see tests/people.py)."""
    from tests.people import make_world

    return await make_world(engine)


@pytest.fixture
async def timebank(participants: Participants) -> TimebankRecord:
    """A fresh timebank with tight, round limits: floor -10 h, ceiling 20 h, max 8 h."""
    return await participants.create_timebank(
        unique_slug(),
        "Riverside Timebank",
        TimebankPolicy(
            default_floor_minutes=-600,
            default_ceiling_minutes=1200,
            max_exchange_minutes=480,
            welcome_grant_minutes=0,
        ),
    )
