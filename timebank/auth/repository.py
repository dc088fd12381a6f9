"""SQL for users, API tokens and sessions, password resets, and roles in timebanks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import Select, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db import tables
from timebank.db.tables import Expr, arg, compiled


async def _one(conn: AsyncConnection, sql: str, **params: Any) -> Mapping[str, Any] | None:
    row = (await conn.execute(text(sql), params)).mappings().one_or_none()
    return dict(row) if row is not None else None


async def user_by_email(conn: AsyncConnection, email: str) -> Mapping[str, Any] | None:
    return await _one(
        conn,
        "SELECT id, email, display_name, password_hash, is_admin FROM users"
        " WHERE lower(email) = lower(:email)",
        email=email,
    )


async def insert_user(
    conn: AsyncConnection,
    *,
    email: str,
    display_name: str,
    password_hash: str | None,
    is_admin: bool = False,
) -> int:
    return (
        await conn.execute(
            text(
                "INSERT INTO users (email, display_name, password_hash, is_admin)"
                " VALUES (:email, :display_name, :password_hash, :is_admin) RETURNING id"
            ),
            {
                "email": email,
                "display_name": display_name,
                "password_hash": password_hash,
                "is_admin": is_admin,
            },
        )
    ).scalar_one()


async def insert_user_if_new(
    conn: AsyncConnection, *, email: str, display_name: str, password_hash: str
) -> int | None:
    """A new user with this email, or None if a user already has it (in any case)."""
    return (
        await conn.execute(
            text(
                "INSERT INTO users (email, display_name, password_hash)"
                " VALUES (:email, :display_name, :password_hash)"
                " ON CONFLICT ((lower(email))) DO NOTHING RETURNING id"
            ),
            {"email": email, "display_name": display_name, "password_hash": password_hash},
        )
    ).scalar_one_or_none()


async def user_summary(conn: AsyncConnection, user_id: int) -> Mapping[str, Any] | None:
    return await _one(
        conn, "SELECT id, email, display_name, is_admin FROM users WHERE id = :id", id=user_id
    )


async def set_password(conn: AsyncConnection, user_id: int, password_hash: str) -> None:
    await conn.execute(
        text("UPDATE users SET password_hash = :hash WHERE id = :id"),
        {"hash": password_hash, "id": user_id},
    )


async def make_admin(conn: AsyncConnection, user_id: int) -> None:
    await conn.execute(text("UPDATE users SET is_admin = true WHERE id = :id"), {"id": user_id})


async def insert_token(
    conn: AsyncConnection,
    *,
    user_id: int,
    kind: str,
    name: str,
    token_hash: bytes,
    expires_at: datetime,
) -> Mapping[str, Any]:
    row = await _one(
        conn,
        "INSERT INTO api_tokens (user_id, kind, name, token_hash, expires_at)"
        " VALUES (:user_id, :kind, :name, :token_hash, :expires_at)"
        " RETURNING id, name, kind, created_at, expires_at, revoked_at",
        user_id=user_id,
        kind=kind,
        name=name,
        token_hash=token_hash,
        expires_at=expires_at,
    )
    assert row is not None
    return row


async def principal_by_token(conn: AsyncConnection, token_hash: bytes) -> Mapping[str, Any] | None:
    return await _one(
        conn,
        "SELECT t.id AS token_id, t.kind AS token_kind, t.expires_at AS token_expires_at,"
        " u.id AS user_id, u.email, u.is_admin"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.token_hash = :hash AND t.revoked_at IS NULL"
        "   AND (t.expires_at IS NULL OR t.expires_at > now())",
        hash=token_hash,
    )


async def principal_in_timebank(
    conn: asyncpg.Connection, token_hash: bytes, slug: str
) -> Mapping[str, Any] | None:
    """Who a token is and what they are in timebank ``slug``, in one statement on a plain
    asyncpg connection: None for no live token; ``timebank_id`` is None when no timebank has
    that slug, ``roles`` empty and ``participant_id`` None when the user has no part in it."""
    return await conn.fetchrow(_PRINCIPAL_IN_TIMEBANK, token_hash, slug)


def principal_in_timebank_query(token_hash: Expr, slug: Expr) -> Select[Any]:
    """Who the token of ``token_hash`` is and what they are in the timebank of ``slug``: no row
    for no live token; ``timebank_id`` null when no timebank has that slug. The statement that
    logs an exchange reads the same caller beside what logging needs."""
    t = tables.api_tokens.alias("t")
    u = tables.users.alias("u")
    b = tables.timebanks.alias("b")
    r = tables.timebank_roles.alias("r")
    p = tables.participants.alias("p")
    roles = select(r.c.role).where(r.c.user_id == u.c.id, r.c.timebank_id == b.c.id)
    participant = select(p.c.id).where(p.c.user_id == u.c.id, p.c.timebank_id == b.c.id)
    return (
        select(
            t.c.id.label("token_id"),
            u.c.id.label("user_id"),
            u.c.email,
            u.c.is_admin,
            b.c.id.label("timebank_id"),
            func.ARRAY(roles.scalar_subquery()).label("roles"),
            participant.scalar_subquery().label("participant_id"),
        )
        .select_from(t.join(u, u.c.id == t.c.user_id).outerjoin(b, b.c.slug == slug))
        .where(
            t.c.token_hash == token_hash,
            t.c.revoked_at.is_(None),
            or_(t.c.expires_at.is_(None), t.c.expires_at > func.now()),
        )
    )


_PRINCIPAL_IN_TIMEBANK = compiled(principal_in_timebank_query(arg(1), arg(2)))


async def list_tokens(conn: AsyncConnection, user_id: int) -> list[Mapping[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT id, name, kind, created_at, expires_at, revoked_at FROM api_tokens"
            " WHERE user_id = :user_id ORDER BY id"
        ),
        {"user_id": user_id},
    )
    return [dict(row) for row in rows.mappings()]


async def revoke_token(conn: AsyncConnection, user_id: int, token_id: int) -> bool:
    result = await conn.execute(
        text(
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())"
            " WHERE id = :id AND user_id = :user_id"
        ),
        {"id": token_id, "user_id": user_id},
    )
    return result.rowcount == 1


async def revoke_tokens(conn: AsyncConnection, user_id: int, *, keep: int | None = None) -> None:
    """End the user's sessions and API tokens, except token ``keep``."""
    await conn.execute(
        text(
            "UPDATE api_tokens SET revoked_at = now() WHERE user_id = :user_id"
            " AND revoked_at IS NULL AND (CAST(:keep AS bigint) IS NULL OR id <> :keep)"
        ),
        {"user_id": user_id, "keep": keep},
    )


async def insert_password_reset(
    conn: AsyncConnection, *, user_id: int, token_hash: bytes, expires_at: datetime
) -> None:
    """A new reset for the user; any earlier one still open stops working."""
    await conn.execute(
        text(
            "UPDATE password_resets SET used_at = now() WHERE user_id = :user_id"
            " AND used_at IS NULL"
        ),
        {"user_id": user_id},
    )
    await conn.execute(
        text(
            "INSERT INTO password_resets (user_id, token_hash, expires_at)"
            " VALUES (:user_id, :token_hash, :expires_at)"
        ),
        {"user_id": user_id, "token_hash": token_hash, "expires_at": expires_at},
    )


async def open_password_reset(conn: AsyncConnection, token_hash: bytes) -> Mapping[str, Any] | None:
    """The user of an unused, unexpired reset (id, email), or None."""
    return await _one(
        conn,
        "SELECT u.id, u.email FROM password_resets r JOIN users u ON u.id = r.user_id"
        " WHERE r.token_hash = :hash AND r.used_at IS NULL AND r.expires_at > now()",
        hash=token_hash,
    )


async def take_password_reset(conn: AsyncConnection, token_hash: bytes) -> int | None:
    """Mark an open reset used (once); its user's id, or None."""
    return (
        await conn.execute(
            text(
                "UPDATE password_resets SET used_at = now() WHERE token_hash = :hash"
                " AND used_at IS NULL AND expires_at > now() RETURNING user_id"
            ),
            {"hash": token_hash},
        )
    ).scalar_one_or_none()


async def timebank_id(conn: AsyncConnection, slug: str) -> int | None:
    return (
        await conn.execute(text("SELECT id FROM timebanks WHERE slug = :slug"), {"slug": slug})
    ).scalar_one_or_none()


async def roles_in(
    conn: AsyncConnection, user_id: int, timebank_id: int
) -> tuple[frozenset[str], int | None]:
    """The user's roles in the timebank, and the participant they act as there (if any)."""
    row = await _one(
        conn,
        "SELECT ARRAY(SELECT r.role FROM timebank_roles r"
        "   WHERE r.user_id = :user_id AND r.timebank_id = :timebank_id) AS roles,"
        " (SELECT p.id FROM participants p"
        "   WHERE p.user_id = :user_id AND p.timebank_id = :timebank_id) AS participant_id",
        user_id=user_id,
        timebank_id=timebank_id,
    )
    assert row is not None, "a SELECT without FROM returns one row"
    return frozenset(row["roles"]), row["participant_id"]


async def memberships(conn: AsyncConnection, user_id: int) -> list[Mapping[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT t.slug, t.name, array_agg(r.role ORDER BY r.role) AS roles,"
            " (SELECT p.id FROM participants p WHERE p.timebank_id = t.id"
            "   AND p.user_id = :user_id) AS participant_id"
            " FROM timebank_roles r JOIN timebanks t ON t.id = r.timebank_id"
            " WHERE r.user_id = :user_id GROUP BY t.id ORDER BY t.slug"
        ),
        {"user_id": user_id},
    )
    return [dict(row) for row in rows.mappings()]


async def grant_role(conn: AsyncConnection, timebank_id: int, user_id: int, role: str) -> None:
    await conn.execute(
        text(
            "INSERT INTO timebank_roles (timebank_id, user_id, role)"
            " VALUES (:timebank_id, :user_id, :role) ON CONFLICT DO NOTHING"
        ),
        {"timebank_id": timebank_id, "user_id": user_id, "role": role},
    )


async def revoke_roles_except(
    conn: AsyncConnection, timebank_id: int, user_id: int, keep: list[str]
) -> None:
    await conn.execute(
        text(
            "DELETE FROM timebank_roles WHERE timebank_id = :timebank_id AND user_id = :user_id"
            " AND NOT (role = ANY(:keep))"
        ),
        {"timebank_id": timebank_id, "user_id": user_id, "keep": keep},
    )


async def lock_roles(conn: AsyncConnection, timebank_id: int, user_id: int) -> list[str]:
    """The user's roles in the timebank, sorted; changes to them wait until this transaction
    ends, so that the change recorded is the change made."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
        {"name": f"roles:{timebank_id}:{user_id}"},
    )
    rows = await conn.execute(
        text(
            "SELECT role FROM timebank_roles WHERE timebank_id = :timebank_id"
            " AND user_id = :user_id ORDER BY role"
        ),
        {"timebank_id": timebank_id, "user_id": user_id},
    )
    return list(rows.scalars())


async def record_role_change(
    conn: AsyncConnection,
    *,
    timebank_id: int,
    user_id: int,
    participant_id: int | None,
    changed_by: int | None,
    invitation_id: int | None,
    from_roles: list[str],
    to_roles: list[str],
) -> None:
    await conn.execute(
        text(
            "INSERT INTO role_changes (timebank_id, user_id, participant_id, changed_by,"
            " invitation_id, from_roles, to_roles) VALUES (:timebank_id, :user_id,"
            " :participant_id, :changed_by, :invitation_id, :from_roles, :to_roles)"
        ),
        {
            "timebank_id": timebank_id,
            "user_id": user_id,
            "participant_id": participant_id,
            "changed_by": changed_by,
            "invitation_id": invitation_id,
            "from_roles": from_roles,
            "to_roles": to_roles,
        },
    )


async def role_changes(
    conn: AsyncConnection,
    timebank_id: int,
    *,
    participant_id: int | None = None,
    user_id: int | None = None,
) -> list[Mapping[str, Any]]:
    """The recorded role changes in a timebank, oldest first: of one participant, or of one
    user (whoever's they are), or all."""
    rows = await conn.execute(
        text(
            "SELECT id, user_id, participant_id, changed_by, invitation_id, from_roles,"
            " to_roles, changed_at FROM role_changes WHERE timebank_id = :timebank_id"
            "   AND (CAST(:participant_id AS bigint) IS NULL OR participant_id = :participant_id)"
            "   AND (CAST(:user_id AS bigint) IS NULL OR user_id = :user_id)"
            " ORDER BY id"
        ),
        {"timebank_id": timebank_id, "participant_id": participant_id, "user_id": user_id},
    )
    return [dict(row) for row in rows.mappings()]


async def roles_anywhere(conn: AsyncConnection, user_id: int) -> tuple[bool, frozenset[str]]:
    """Whether the user is a site admin, and the roles they hold in any timebank: what
    ``timebank.auth.schemas.has_part`` decides from."""
    row = await _one(
        conn,
        "SELECT coalesce((SELECT u.is_admin FROM users u WHERE u.id = :user_id), false)"
        " AS is_admin,"
        " ARRAY(SELECT DISTINCT r.role FROM timebank_roles r WHERE r.user_id = :user_id) AS roles",
        user_id=user_id,
    )
    assert row is not None, "a SELECT without FROM returns one row"
    return row["is_admin"], frozenset(row["roles"])
