"""The names of named participants, and for coordinators how to reach them: what a page needs
to label the people it shows, read by one query of its own rather than by listing the
timebank."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.auth.schemas import TimebankAccess
from timebank.db.statements import fetch
from timebank.errors import Forbidden
from timebank.participants.contact import how_to_reach

_NAMES = (
    "SELECT id, display_name FROM participants WHERE timebank_id = $1 AND id = ANY($2::bigint[])"
)

# The email as the participant answers show it: recorded, else their user's, else the last
# address they were invited at.
_REACH = (
    "SELECT p.id, p.contact_preference, p.phone, p.postal_address,"
    " coalesce(p.email, u.email, (SELECT i.email FROM invitations i"
    "   WHERE i.timebank_id = p.timebank_id AND i.participant_id = p.id"
    "   ORDER BY i.id DESC LIMIT 1)) AS email"
    " FROM participants p LEFT JOIN users u ON u.id = p.user_id"
    " WHERE p.timebank_id = $1 AND p.id = ANY($2::bigint[])"
)

# The holders of accounts $2 of timebank $1: a participant's name, or null for the pot.
_ACCOUNT_HOLDERS = (
    "SELECT a.id, p.display_name FROM accounts a"
    " LEFT JOIN participants p ON p.timebank_id = a.timebank_id AND p.id = a.participant_id"
    " WHERE a.timebank_id = $1 AND a.id = ANY($2::bigint[])"
)
POT_NAME = "the community pot"


def require_directory_reader(access: TimebankAccess) -> None:
    """Coordinators, admins and members see who is in the timebank; funders see aggregates."""
    if not access.can_manage and access.member_participant_id is None:
        raise Forbidden("funders see aggregate reports, not the list of participants")


async def names_of(
    engine: AsyncEngine, access: TimebankAccess, ids: Iterable[int | None]
) -> dict[int, str]:
    """Participant id → display name, for these participants of the caller's timebank (ids
    of another timebank, or of nobody, are left out)."""
    require_directory_reader(access)
    wanted = sorted({participant_id for participant_id in ids if participant_id is not None})
    if not wanted:
        return {}
    async with engine.connect() as conn:
        rows = await fetch(conn, _NAMES, access.timebank_id, wanted)
    return {row["id"]: row["display_name"] for row in rows}


async def reach_of(
    engine: AsyncEngine, access: TimebankAccess, ids: Iterable[int | None]
) -> dict[int, str]:
    """Participant id → how to reach them (``how_to_reach``), for these participants of the
    caller's timebank: coordinators and admins only, as contact details are theirs to see."""
    if not access.can_manage:
        raise Forbidden("how to reach people is for coordinators")
    wanted = sorted({participant_id for participant_id in ids if participant_id is not None})
    if not wanted:
        return {}
    async with engine.connect() as conn:
        rows = await fetch(conn, _REACH, access.timebank_id, wanted)
    return {
        row["id"]: how_to_reach(
            row["contact_preference"], row["email"], row["phone"], row["postal_address"]
        )
        for row in rows
    }


async def account_holders(
    engine: AsyncEngine, access: TimebankAccess, account_ids: Iterable[int]
) -> dict[int, str]:
    """Account id → the name of whoever holds it (``POT_NAME`` for the community pot), for
    these accounts of the caller's timebank: what a statement's lines are with."""
    require_directory_reader(access)
    wanted = sorted(set(account_ids))
    if not wanted:
        return {}
    async with engine.connect() as conn:
        rows = await fetch(conn, _ACCOUNT_HOLDERS, access.timebank_id, wanted)
    return {row["id"]: row["display_name"] or POT_NAME for row in rows}
