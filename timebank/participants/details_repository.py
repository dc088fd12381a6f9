"""SQL for a participant's details as coordinators keep them: their name and how to reach them,
their external id, and whether they are deactivated. Every query is scoped by ``timebank_id``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db import tables
from timebank.db.compose import arg, compiled_sql
from timebank.db.statements import execute, fetch, fetch_one
from timebank.errors import NotFound
from timebank.participants.repository import CONTACT_COLUMNS, LOCK

_PARTICIPANT_WITH_EXTERNAL_ID = (
    "SELECT id FROM participants WHERE timebank_id = $1 AND external_id = $2"
    " AND id IS DISTINCT FROM CAST($3 AS bigint)"
)
# $1 timebank, $2 participant, then the fields in the order of EDITABLE_COLUMNS.
EDITABLE_COLUMNS = ("display_name", *CONTACT_COLUMNS)
_UPDATE_DETAILS = compiled_sql(
    update(tables.participants)
    .where(tables.participants.c.timebank_id == arg(1), tables.participants.c.id == arg(2))
    .values({name: arg(n) for n, name in enumerate(EDITABLE_COLUMNS, start=3)})
    .returning(tables.participants.c.id)
)
_STORED_CONTACT = (
    "SELECT display_name, email, phone, postal_address, contact_preference, external_id"
    " FROM participants WHERE timebank_id = $1 AND id = $2 FOR NO KEY UPDATE"
)
# $3 true: deactivate (keeping the first time), false: reactivate.
_SET_DEACTIVATED = (
    "UPDATE participants SET deactivated_at = CASE WHEN $3"
    "   THEN coalesce(deactivated_at, now()) END"
    " WHERE timebank_id = $1 AND id = $2 RETURNING id"
)


async def participant_with_external_id(
    conn: AsyncConnection, timebank_id: int, external_id: str, *, but: int | None = None
) -> int | None:
    """The participant of this timebank (other than ``but``) with this external id, if any.
    Uses of one id take turns until the transaction ends."""
    await fetch(conn, LOCK, f"participant-external-id:{timebank_id}:{external_id}")
    row = await fetch_one(conn, _PARTICIPANT_WITH_EXTERNAL_ID, timebank_id, external_id, but)
    return row["id"] if row is not None else None


async def stored_details(
    conn: AsyncConnection, timebank_id: int, participant_id: int
) -> Mapping[str, Any]:
    """A participant's name and contact fields as stored (not their user's or invitation's
    email), locked until the transaction ends."""
    row = await fetch_one(conn, _STORED_CONTACT, timebank_id, participant_id)
    if row is None:
        raise NotFound(f"participant {participant_id} not found in this timebank")
    return row


async def update_details(
    conn: AsyncConnection, timebank_id: int, participant_id: int, details: Mapping[str, Any]
) -> None:
    """Store a participant's name and contact fields (all of EDITABLE_COLUMNS)."""
    values = [details[name] for name in EDITABLE_COLUMNS]
    await execute(conn, _UPDATE_DETAILS, timebank_id, participant_id, *values)


async def set_deactivated(
    conn: AsyncConnection, timebank_id: int, participant_id: int, deactivated: bool
) -> None:
    """Deactivate (from now, or from when first deactivated) or reactivate a participant."""
    row = await fetch_one(conn, _SET_DEACTIVATED, timebank_id, participant_id, deactivated)
    if row is None:
        raise NotFound(f"participant {participant_id} not found in this timebank")
