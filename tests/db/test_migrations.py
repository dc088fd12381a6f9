"""The schema's SQL and the migrations that run it: one file per database function, each the
definition the database holds; a database the squashed revisions left at their last is taken
over, one they left earlier is refused."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest
from click.testing import CliRunner

from tests.conftest import _with_database
from timebank.cli import main
from timebank.db import migrations
from timebank.db.engine import asyncpg_dsn
from timebank.settings import get_settings

FUNCTIONS_DIR = migrations.schema_dir() / "sql" / "functions"

# The functions of the public schema, without those an extension brings.
DATABASE_FUNCTIONS = """
    SELECT p.proname, pg_get_functiondef(p.oid) AS definition
      FROM pg_proc p
     WHERE p.pronamespace = 'public'::regnamespace
       AND NOT EXISTS (SELECT FROM pg_depend d
                        WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.deptype = 'e')
     ORDER BY p.proname
"""
TRIGGERS = """
    SELECT tgname, tgrelid::regclass::text AS on_table, pg_get_triggerdef(oid) AS definition
      FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2
"""


def _defined_in(sql: str) -> list[str]:
    return re.findall(r"CREATE (?:OR REPLACE )?FUNCTION (\w+)\(", sql)


async def test_every_database_function_has_exactly_one_file_named_after_it(raw):
    in_database = {row["proname"] for row in await raw.fetch(DATABASE_FUNCTIONS)}
    files = {path.stem: path.read_text(encoding="utf-8") for path in FUNCTIONS_DIR.glob("*.sql")}
    assert set(files) == in_database
    for name, text in files.items():
        assert _defined_in(text) == [name], f"{name}.sql must define {name} and nothing else"
    every_definition = Counter(
        name
        for path in migrations.schema_dir().rglob("*.sql")
        for name in _defined_in(path.read_text(encoding="utf-8"))
    )
    assert {name: count for name, count in every_definition.items() if count > 1} == {}


async def test_every_function_file_is_what_the_database_holds_and_runs_again(raw):
    """Running every file again (as a revision that changes a function does) changes no
    function and no trigger: each file is the database's definition, and can be run twice."""
    before = [tuple(row) for row in await raw.fetch(DATABASE_FUNCTIONS)]
    triggers_before = [tuple(row) for row in await raw.fetch(TRIGGERS)]
    transaction = raw.transaction()
    await transaction.start()
    try:
        for path in sorted(FUNCTIONS_DIR.glob("*.sql")):
            await raw.execute(path.read_text(encoding="utf-8"))
        after = [tuple(row) for row in await raw.fetch(DATABASE_FUNCTIONS)]
        triggers_after = [tuple(row) for row in await raw.fetch(TRIGGERS)]
    finally:
        await transaction.rollback()
    assert after == before
    assert triggers_after == triggers_before


@pytest.fixture
async def database_at(database_url: str, raw: asyncpg.Connection) -> AsyncIterator[str]:
    """An empty scratch database on the test server."""
    name = f"timebank_revision_{uuid.uuid4().hex[:8]}"
    await raw.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(database_url, name)
    await raw.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


async def _stamp(url: str, revision: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            "CREATE TABLE alembic_version (version_num varchar(32) NOT NULL,"
            " CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
        await conn.execute("INSERT INTO alembic_version VALUES ($1)", revision)
    finally:
        await conn.close()


async def _revision(url: str) -> str:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await conn.close()


async def test_a_database_at_the_last_squashed_revision_is_stamped_baseline(
    database_at: str, caplog: pytest.LogCaptureFixture
):
    # The schema those revisions built is the baseline's: build it, then say it came from them.
    await migrations.upgrade_async(database_at, migrations.BASELINE)
    conn = await asyncpg.connect(asyncpg_dsn(database_at))
    try:
        await conn.execute("UPDATE alembic_version SET version_num = '0015_published_cells'")
    finally:
        await conn.close()
    with caplog.at_level(logging.WARNING, logger="timebank.db.migrations"):
        await migrations.upgrade_async(database_at)
    assert await _revision(database_at) == migrations.head_revision()
    stamped = [r.getMessage() for r in caplog.records if r.name == "timebank.db.migrations"]
    assert stamped == [
        "database at 0015_published_cells (same schema as the baseline): stamped 0001_baseline"
    ]


async def test_a_database_at_an_earlier_squashed_revision_is_refused(database_at: str):
    await _stamp(database_at, "0013_corrections_and_limits")
    with pytest.raises(
        migrations.SchemaRefused, match=r"0013_corrections_and_limits.*Restore a backup"
    ):
        await migrations.upgrade_async(database_at)
    assert await _revision(database_at) == "0013_corrections_and_limits"


@pytest.mark.parametrize(
    ("revision", "said"),
    [
        ("0013_corrections_and_limits", "older than 0015_published_cells"),
        ("0099_from_a_newer_version", "Can't locate revision identified by '0099_"),
    ],
)
async def test_the_upgrade_command_refuses_a_database_it_cannot_migrate_in_one_line(
    database_at: str, monkeypatch: pytest.MonkeyPatch, revision: str, said: str
):
    await _stamp(database_at, revision)
    monkeypatch.setenv("TIMEBANK_DATABASE_URL", database_at)
    get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(CliRunner().invoke, main, ["db", "upgrade"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and said in result.output
    assert "Traceback" not in result.output
    assert await _revision(database_at) == revision
