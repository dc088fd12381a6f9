"""SQL for invitations: made by coordinators, accepted once by whoever holds the token."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from timebank.db.statements import Connection, execute, fetch_one, fetch_value

# $1 timebank, $2 participant (NULL: staff), $3 email, $4 roles, $5 token hash, $6 invited by,
# $7 expires at.
_INSERT_INVITATION = (
    "INSERT INTO invitations (timebank_id, participant_id, email, roles, token_hash,"
    " invited_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id"
)
_OPEN_INVITATION = (
    "SELECT i.id, i.timebank_id, t.slug AS timebank_slug, i.participant_id, i.email, i.roles,"
    " i.invited_by, p.display_name"
    " FROM invitations i JOIN timebanks t ON t.id = i.timebank_id"
    " LEFT JOIN participants p ON p.timebank_id = i.timebank_id AND p.id = i.participant_id"
    " WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.expires_at > now()"
    # An invitation is worth no more than its maker: open only while they still run the
    # timebank (a site admin, or one of its coordinators).
    "   AND (i.invited_by IS NULL"
    "        OR EXISTS (SELECT 1 FROM users a WHERE a.id = i.invited_by AND a.is_admin)"
    "        OR EXISTS (SELECT 1 FROM timebank_roles r WHERE r.user_id = i.invited_by"
    "                   AND r.timebank_id = i.timebank_id AND r.role = 'coordinator'))"
)
_MARK_ACCEPTED = (
    "UPDATE invitations SET accepted_at = now(), accepted_by = $2"
    " WHERE id = $1 AND accepted_at IS NULL"
)
_PARTICIPANT_IN = "SELECT id FROM participants WHERE timebank_id = $1 AND user_id = $2"
_LINK_PARTICIPANT = (
    "UPDATE participants SET user_id = $3"
    " WHERE timebank_id = $1 AND id = $2 AND user_id IS NULL RETURNING id"
)


async def insert_invitation(
    conn: Connection,
    *,
    timebank_id: int,
    participant_id: int | None,
    email: str,
    roles: list[str],
    token_hash: bytes,
    invited_by: int | None,
    expires_at: datetime,
) -> int:
    """An invitation for ``email`` to take part as ``participant_id`` (or as staff, with
    none), granting ``roles`` to whoever accepts it."""
    return await fetch_value(
        conn,
        _INSERT_INVITATION,
        timebank_id,
        participant_id,
        email,
        roles,
        token_hash,
        invited_by,
        expires_at,
    )


async def open_invitation(
    conn: Connection, token_hash: bytes, *, for_update: bool = False
) -> Mapping[str, Any] | None:
    """The open (not accepted, not expired) invitation with this token, or None. With
    ``for_update``, a concurrent acceptance waits, then finds it no longer open."""
    sql = _OPEN_INVITATION + (" FOR UPDATE OF i" if for_update else "")
    return await fetch_one(conn, sql, token_hash)


async def mark_accepted(conn: Connection, invitation_id: int, user_id: int) -> None:
    await execute(conn, _MARK_ACCEPTED, invitation_id, user_id)


async def participant_in(conn: Connection, timebank_id: int, user_id: int) -> int | None:
    """The user's participant in the timebank, if any."""
    return await fetch_value(conn, _PARTICIPANT_IN, timebank_id, user_id)


async def link_participant(
    conn: Connection, timebank_id: int, participant_id: int, user_id: int
) -> bool:
    """Make the user the one who acts as the participant; False if someone already does."""
    return (
        await fetch_one(conn, _LINK_PARTICIPANT, timebank_id, participant_id, user_id) is not None
    )
