"""The record of funder publications: which cells each published and which it withheld, so
that a later publication never shows what an earlier one withheld."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.reports.repository import rows

_LOCK_PUBLICATIONS = "SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"

_PUBLISHED_CELLS = """
    SELECT figure, period_kind, period_start, label, withheld
    FROM published_cells
    WHERE timebank_id = :tb
"""

_RECORD_CELLS = """
    INSERT INTO published_cells AS cell
        (timebank_id, figure, period_kind, period_start, label, withheld, first_published,
         first_withheld)
    SELECT :tb, figure, period_kind, period_start, label, withheld, :through,
           CASE WHEN withheld THEN CAST(:through AS date) END
    FROM unnest(
        CAST(:figures AS text[]), CAST(:kinds AS text[]), CAST(:starts AS date[]),
        CAST(:labels AS text[]), CAST(:withheld AS boolean[])
    ) AS given (figure, period_kind, period_start, label, withheld)
    ON CONFLICT (timebank_id, figure, period_kind, period_start, label) DO UPDATE
    SET withheld = true, first_withheld = excluded.first_withheld
    WHERE excluded.withheld AND NOT cell.withheld
"""

CellRow = tuple[str, str, date, str]


async def lock_publications(conn: AsyncConnection, timebank_id: int) -> None:
    """Protect one timebank's funder publications one at a time (until the transaction ends),
    so that each starts from everything the others recorded."""
    await conn.execute(text(_LOCK_PUBLICATIONS), {"name": f"funder publication {timebank_id}"})


async def published_cells(conn: AsyncConnection, timebank_id: int) -> dict[CellRow, bool]:
    """Every cell the timebank's funder publications have published: cell -> withheld."""
    found = await rows(conn, _PUBLISHED_CELLS, {"tb": timebank_id})
    return {
        (row["figure"], row["period_kind"], row["period_start"], row["label"]): row["withheld"]
        for row in found
    }


async def record_published_cells(
    conn: AsyncConnection, timebank_id: int, through: date, cells: Mapping[CellRow, bool]
) -> None:
    """Record the cells of a publication (through ``through``): new cells as they are, and
    cells shown before that it withholds as withheld from now on (never the other way)."""
    ordered = sorted(cells.items())
    await conn.execute(
        text(_RECORD_CELLS),
        {
            "tb": timebank_id,
            "through": through,
            "figures": [cell[0] for cell, _ in ordered],
            "kinds": [cell[1] for cell, _ in ordered],
            "starts": [cell[2] for cell, _ in ordered],
            "labels": [cell[3] for cell, _ in ordered],
            "withheld": [withheld for _, withheld in ordered],
        },
    )
