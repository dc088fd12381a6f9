"""Building import files for the tests, and reading back what an import left."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
from collections.abc import Sequence

import asyncpg


def csv_bytes(
    header: Sequence[str], rows: Sequence[Sequence[object]], *, bom: bool = False
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" if bom else "").encode() + out.getvalue().encode()


PEOPLE_HEADER = (
    "name",
    "kind",
    "email",
    "phone",
    "contact_preference",
    "joined_on",
    "opening_balance",
    "external_id",
)
HISTORY_HEADER = ("service_date", "giver", "receiver", "minutes", "category", "description")


async def counts(raw: asyncpg.Connection, timebank_id: int) -> dict[str, int]:
    """What a timebank holds: people, exchanges, transfers, postings, opening balances."""
    row = await raw.fetchrow(
        """
        SELECT (SELECT count(*) FROM participants WHERE timebank_id = $1) AS people,
               (SELECT count(*) FROM exchanges WHERE timebank_id = $1) AS exchanges,
               (SELECT count(*) FROM transfers WHERE timebank_id = $1) AS transfers,
               (SELECT count(*) FROM postings WHERE timebank_id = $1) AS postings,
               (SELECT count(*) FROM opening_balances WHERE timebank_id = $1) AS openings
        """,
        timebank_id,
    )
    return dict(row)


async def balances(raw: asyncpg.Connection, timebank_id: int) -> dict[str, int]:
    """Each participant's balance by external id (or name, for those without one)."""
    rows = await raw.fetch(
        "SELECT coalesce(p.external_id, p.display_name) AS who, a.balance"
        " FROM participants p JOIN accounts a ON a.participant_id = p.id"
        " WHERE p.timebank_id = $1",
        timebank_id,
    )
    return {row["who"]: row["balance"] for row in rows}


async def run_command(command: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run a command to its end: its exit status, standard output and standard error."""
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=300)
    return process.returncode or 0, out.decode(), err.decode()
