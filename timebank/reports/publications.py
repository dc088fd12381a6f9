"""The record of funder publications: which cells each published and which it withheld, so
that a later publication never shows what an earlier one withheld."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db.statements import execute, fetch

_LOCK_PUBLICATIONS = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"

_PUBLISHED_CELLS = """
    SELECT figure, period_kind, period_start, label, withheld, shown_value
    FROM published_cells
    WHERE timebank_id = $1
"""

# $1 timebank, $2 through; the cells as arrays: $3 figures, $4 period kinds, $5 period
# starts, $6 labels, $7 values shown (NULL: withheld).
_RECORD_CELLS = """
    INSERT INTO published_cells AS cell
        (timebank_id, figure, period_kind, period_start, label, withheld, first_published,
         first_withheld, shown_value)
    SELECT $1, figure, period_kind, period_start, label, shown IS NULL, $2,
           CASE WHEN shown IS NULL THEN CAST($2 AS date) END, shown
    FROM unnest(
        CAST($3 AS text[]), CAST($4 AS text[]), CAST($5 AS date[]),
        CAST($6 AS text[]), CAST($7 AS bigint[])
    ) AS given (figure, period_kind, period_start, label, shown)
    ON CONFLICT (timebank_id, figure, period_kind, period_start, label) DO UPDATE
    SET withheld = cell.withheld OR excluded.withheld,
        first_withheld = coalesce(cell.first_withheld, excluded.first_withheld),
        shown_value = coalesce(excluded.shown_value, cell.shown_value)
"""

CellRow = tuple[str, str, date, str]
_UNKNOWN = -1  # shown before its value was recorded: no figure is negative, so none matches


async def lock_publications(conn: AsyncConnection, timebank_id: int) -> None:
    """Protect one timebank's funder publications one at a time (until the transaction ends),
    so that each starts from everything the others recorded."""
    await execute(conn, _LOCK_PUBLICATIONS, f"funder publication {timebank_id}")


async def published_cells(conn: AsyncConnection, timebank_id: int) -> dict[CellRow, int | None]:
    """Every cell the timebank's funder publications have published: cell -> the value last
    shown, None once withheld."""
    found = await fetch(conn, _PUBLISHED_CELLS, timebank_id)
    return {
        (row["figure"], row["period_kind"], row["period_start"], row["label"]): (
            None
            if row["withheld"]
            else _UNKNOWN
            if row["shown_value"] is None
            else row["shown_value"]
        )
        for row in found
    }


async def record_published_cells(
    conn: AsyncConnection, timebank_id: int, through: date, cells: Mapping[CellRow, int | None]
) -> None:
    """Record the cells of a publication (through ``through``; cell -> the value shown, None
    withheld): new cells as they are, shown cells with the value shown now, and cells it
    withholds as withheld from now on (never the other way)."""
    ordered = sorted(cells.items())
    await execute(
        conn,
        _RECORD_CELLS,
        timebank_id,
        through,
        [cell[0] for cell, _ in ordered],
        [cell[1] for cell, _ in ordered],
        [cell[2] for cell, _ in ordered],
        [cell[3] for cell, _ in ordered],
        [shown for _, shown in ordered],
    )
