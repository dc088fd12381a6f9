"""SQL for invitations: made by coordinators, accepted once by whoever holds the token."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_invitation(
    conn: AsyncConnection,
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
    return (
        await conn.execute(
            text(
                "INSERT INTO invitations (timebank_id, participant_id, email, roles, token_hash,"
                " invited_by, expires_at) VALUES (:timebank_id, :participant_id, :email,"
                " :roles, :token_hash, :invited_by, :expires_at) RETURNING id"
            ),
            {
                "timebank_id": timebank_id,
                "participant_id": participant_id,
                "email": email,
                "roles": roles,
                "token_hash": token_hash,
                "invited_by": invited_by,
                "expires_at": expires_at,
            },
        )
    ).scalar_one()


_OPEN_INVITATION = (
    "SELECT i.id, i.timebank_id, t.slug AS timebank_slug, i.participant_id, i.email, i.roles,"
    " i.invited_by, p.display_name"
    " FROM invitations i JOIN timebanks t ON t.id = i.timebank_id"
    " LEFT JOIN participants p ON p.timebank_id = i.timebank_id AND p.id = i.participant_id"
    " WHERE i.token_hash = :hash AND i.accepted_at IS NULL AND i.expires_at > now()"
    # An invitation is worth no more than its maker: open only while they still run the
    # timebank (a site admin, or one of its coordinators).
    "   AND (i.invited_by IS NULL"
    "        OR EXISTS (SELECT 1 FROM users a WHERE a.id = i.invited_by AND a.is_admin)"
    "        OR EXISTS (SELECT 1 FROM timebank_roles r WHERE r.user_id = i.invited_by"
    "                   AND r.timebank_id = i.timebank_id AND r.role = 'coordinator'))"
)


async def open_invitation(
    conn: AsyncConnection, token_hash: bytes, *, for_update: bool = False
) -> Mapping[str, Any] | None:
    """The open (not accepted, not expired) invitation with this token, or None. With
    ``for_update``, a concurrent acceptance waits, then finds it no longer open."""
    sql = _OPEN_INVITATION + (" FOR UPDATE OF i" if for_update else "")
    row = (await conn.execute(text(sql), {"hash": token_hash})).mappings().one_or_none()
    return dict(row) if row is not None else None


async def mark_accepted(conn: AsyncConnection, invitation_id: int, user_id: int) -> None:
    await conn.execute(
        text(
            "UPDATE invitations SET accepted_at = now(), accepted_by = :user_id"
            " WHERE id = :id AND accepted_at IS NULL"
        ),
        {"id": invitation_id, "user_id": user_id},
    )


async def participant_in(conn: AsyncConnection, timebank_id: int, user_id: int) -> int | None:
    """The user's participant in the timebank, if any."""
    return (
        await conn.execute(
            text(
                "SELECT id FROM participants WHERE timebank_id = :timebank_id"
                " AND user_id = :user_id"
            ),
            {"timebank_id": timebank_id, "user_id": user_id},
        )
    ).scalar_one_or_none()


async def link_participant(
    conn: AsyncConnection, timebank_id: int, participant_id: int, user_id: int
) -> bool:
    """Make the user the one who acts as the participant; False if someone already does."""
    result = await conn.execute(
        text(
            "UPDATE participants SET user_id = :user_id"
            " WHERE timebank_id = :timebank_id AND id = :id AND user_id IS NULL"
        ),
        {"timebank_id": timebank_id, "id": participant_id, "user_id": user_id},
    )
    return result.rowcount == 1
