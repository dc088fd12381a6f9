"""The ledger's door for restoring an archive (``timebank import archive``): the ledger's rows
copied in as they were, ids and figures included, and the audit that must find nothing in them
before the restore may commit.

The copy runs with the ledger's triggers off (``timebank.db.restore.triggers_off``): a restored
account already holds its balance and version, which the triggers allow only posting by
posting. ``restored_ledger_findings`` then re-derives every invariant they hold from the rows
themselves (``timebank.ledger.audit``), in the restoring transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db.restore import copy_rows
from timebank.ledger.audit import Finding, audit_as_seen

# The ledger's tables and the records beside them, in the order a restore writes them.
LEDGER_TABLES = (
    "accounts",
    "pending_transfers",
    "transfers",
    "postings",
    "account_limit_changes",
    "gifts",
    "opening_balances",
    "departures",
)


async def copy_ledger_rows(
    conn: AsyncConnection, table: str, columns: Sequence[str], records: Iterable[tuple[Any, ...]]
) -> None:
    """Copy ``records`` into the ledger table ``table`` as they are (the caller has turned the
    triggers off and checks ``restored_ledger_findings`` before it commits)."""
    if table not in LEDGER_TABLES:
        raise ValueError(f"{table} is not a table of the ledger")
    await copy_rows(conn, table, columns, records)


async def restored_ledger_findings(conn: AsyncConnection, slug: str) -> list[Finding]:
    """Whatever the ledger audit finds wrong with timebank ``slug`` as the caller's transaction
    sees it: nothing, for rows that may be committed."""
    return (await audit_as_seen(conn, slug)).findings
