"""`timebank import history` killed with SIGKILL half-way through writing leaves nothing, and
running it again imports the whole file: the import is one transaction."""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import date, timedelta

import asyncpg

from tests.conftest import unique_slug
from tests.imports.files import HISTORY_HEADER, PEOPLE_HEADER, counts, csv_bytes, run_command
from tests.ops.server import TIMEBANK, environment
from timebank.imports.service import Imports
from timebank.ledger.audit import audit
from timebank.participants.schemas import TimebankPolicy

PEOPLE = 300
EXCHANGES = 30_000  # enough that posting them takes seconds, so the kill lands mid-write


def _files() -> tuple[bytes, bytes]:
    people = [
        (f"Person {i}", "member", "", "", "", "2015-01-01", "", f"P{i}") for i in range(PEOPLE)
    ]
    first = date(2016, 1, 1)
    history = [
        (
            (first + timedelta(days=i % 3000)).isoformat(),
            f"P{i % PEOPLE}",
            f"P{(i * 7 + 1) % PEOPLE}"
            if (i * 7 + 1) % PEOPLE != i % PEOPLE
            else f"P{(i + 1) % PEOPLE}",
            str(30 + 15 * (i % 4)),
            "",
            "",
        )
        for i in range(EXCHANGES)
    ]
    return csv_bytes(PEOPLE_HEADER, people), csv_bytes(HISTORY_HEADER, history)


async def _writing(
    raw: asyncpg.Connection, process: asyncio.subprocess.Process, seconds: float
) -> None:
    """Until the import's connection is posting transfers (its transaction open)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.returncode is None, "the import ended before it was killed"
        busy = await raw.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'active' AND query LIKE '%ledger_post_batch%'"
        )
        if busy:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the import never started writing")


async def _backends_gone(raw: asyncpg.Connection) -> None:
    """Until no other connection holds the dead import's transaction."""
    deadline = time.monotonic() + 60
    while await raw.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
        " AND query LIKE '%ledger_post_batch%'"
    ):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


async def test_an_import_killed_mid_write_leaves_nothing_and_a_rerun_completes_it(
    database_url, engine, raw, participants, tmp_path
):
    timebank = await participants.create_timebank(
        unique_slug("imp"),
        "Moving in",
        TimebankPolicy(default_floor_minutes=-100_000, default_ceiling_minutes=100_000),
    )
    people, history = _files()
    await Imports(engine).run(timebank.slug, "people", people)
    path = tmp_path / "history.csv"
    path.write_bytes(history)
    command = [*TIMEBANK, "import", "history", str(path), "--timebank", timebank.slug]
    env = environment(database_url)
    before = await counts(raw, timebank.id)

    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await _writing(raw, process, seconds=60)
    finally:
        process.kill()  # SIGKILL
        await process.wait()
    await _backends_gone(raw)
    assert await counts(raw, timebank.id) == before

    status, out, err = await run_command(command, env)
    assert status == 0, err
    assert f"{EXCHANGES} imported" in out
    after = await counts(raw, timebank.id)
    assert after["exchanges"] == EXCHANGES
    assert after["transfers"] == before["transfers"] + EXCHANGES
    async with engine.connect() as conn:
        assert (await audit(conn, timebank.slug)).findings == []
    status, out, err = await run_command(command, env)
    assert status == 0 and "nothing new to import" in out, err
    assert await counts(raw, timebank.id) == after
