"""The `timebank` command as a newcomer and an operator run it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from timebank.imports.service import Imports
from timebank.ledger import Ledger

TIMEBANK = [sys.executable, "-m", "timebank.cli"]


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*TIMEBANK, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def env_with(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env.update(values)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_on_the_embedded_database_is_healthy_and_stops_it_on_sigterm():
    data_dir = Path(tempfile.mkdtemp(prefix="timebank-serve-"))
    port = free_port()
    server = subprocess.Popen(
        [*TIMEBANK, "serve", "--port", str(port)],
        env=env_with(TIMEBANK_DATA_DIR=str(data_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code
                if status == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        assert status == 200, server.stdout.read() if server.poll() is not None else status
        docs = httpx.get(f"http://127.0.0.1:{port}/schema/openapi.json", timeout=5)
        assert "/health" in docs.json()["paths"]
        # SIGTERM, as docker stop and systemd send it: the embedded server stops with it.
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_db_upgrade_is_safe_to_repeat(database_url):
    result = run_cli("db", "upgrade", env=env_with(TIMEBANK_DATABASE_URL=database_url))
    assert result.returncode == 0, result.stderr
    assert "revision" in result.stdout


async def test_verify_passes_then_names_the_tampered_account(
    database_url, raw, ledger: Ledger, participants, timebank
):
    a = await participants.enrol(timebank, "member", "Ada")
    b = await participants.enrol(timebank, "organisation", "Riverside Library")
    posted = await ledger.post_transfer(timebank.id, a.account_id, b.account_id, 75)
    env = env_with(TIMEBANK_DATABASE_URL=database_url)

    clean = run_cli("verify", "--timebank", timebank.slug, env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "ledger OK" in clean.stdout

    async with raw.transaction():
        await raw.execute("SET LOCAL session_replication_role = replica")
        await raw.execute(
            "UPDATE postings SET minutes = 7 WHERE transfer_id = $1 AND account_id = $2",
            posted.transfer.id,
            b.account_id,
        )
    broken = run_cli("verify", "--timebank", timebank.slug, env=env)
    assert broken.returncode == 1
    assert f"account {b.account_id}" in broken.stdout
    assert "BROKEN" in broken.stdout


async def test_verify_names_an_exchange_that_disagrees_with_its_transfer(
    database_url, raw, engine, timebank
):
    imports = Imports(engine)
    await imports.run(timebank.slug, "people", b"name,external_id\nAda,A\nBea,B\n")
    await imports.run(
        timebank.slug, "history", b"service_date,giver,receiver,minutes\n2026-01-05,A,B,45\n"
    )
    env = env_with(TIMEBANK_DATABASE_URL=database_url)
    assert run_cli("verify", "--timebank", timebank.slug, env=env).returncode == 0

    # The exchange now says 12 hours while the ledger moved 45 minutes: reports and balances
    # would disagree.
    async with raw.transaction():
        await raw.execute("SET LOCAL session_replication_role = replica")
        exchange_id = await raw.fetchval(
            "UPDATE exchanges SET minutes = 720 WHERE timebank_id = $1 RETURNING id", timebank.id
        )
    broken = run_cli("verify", "--timebank", timebank.slug, env=env)
    assert broken.returncode == 1
    assert f"BROKEN [exchanges] timebank {timebank.slug}, exchange {exchange_id}: its transfer" in (
        broken.stdout
    )


def test_verify_of_an_unknown_timebank_says_so(database_url):
    env = env_with(TIMEBANK_DATABASE_URL=database_url)
    result = run_cli("verify", "--timebank", "no-such-bank", env=env)
    assert result.returncode != 0
    assert "no-such-bank" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("bad_url", ["mysql://root@localhost/timebank"])
def test_a_database_url_that_is_not_postgresql_is_refused(bad_url):
    result = run_cli("verify", env=env_with(TIMEBANK_DATABASE_URL=bad_url))
    assert result.returncode != 0
    assert "must be a postgresql://" in result.stderr
    assert "Traceback" not in result.stderr
