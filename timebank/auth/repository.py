"""SQL for users, API tokens and sessions, password resets, and roles in timebanks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select

from timebank.db import tables
from timebank.db.compose import Expr, arg, compiled_sql
from timebank.db.statements import Connection, execute, fetch, fetch_one, fetch_value

# --- Users -----------------------------------------------------------------------------------

_USER_BY_EMAIL = (
    "SELECT id, email, display_name, password_hash, is_admin FROM users"
    " WHERE lower(email) = lower($1)"
)
# $1 email, $2 display name, $3 password hash, $4 is admin.
_INSERT_USER = (
    "INSERT INTO users (email, display_name, password_hash, is_admin)"
    " VALUES ($1, $2, $3, $4) RETURNING id"
)
_INSERT_USER_IF_NEW = (
    "INSERT INTO users (email, display_name, password_hash) VALUES ($1, $2, $3)"
    " ON CONFLICT ((lower(email))) DO NOTHING RETURNING id"
)
_USER_SUMMARY = "SELECT id, email, display_name, is_admin FROM users WHERE id = $1"
_SET_PASSWORD = "UPDATE users SET password_hash = $2 WHERE id = $1"
_MAKE_ADMIN = "UPDATE users SET is_admin = true WHERE id = $1"


async def user_by_email(conn: Connection, email: str) -> Mapping[str, Any] | None:
    return await fetch_one(conn, _USER_BY_EMAIL, email)


async def insert_user(
    conn: Connection,
    *,
    email: str,
    display_name: str,
    password_hash: str | None,
    is_admin: bool = False,
) -> int:
    return await fetch_value(conn, _INSERT_USER, email, display_name, password_hash, is_admin)


async def insert_user_if_new(
    conn: Connection, *, email: str, display_name: str, password_hash: str
) -> int | None:
    """A new user with this email, or None if a user already has it (in any case)."""
    return await fetch_value(conn, _INSERT_USER_IF_NEW, email, display_name, password_hash)


async def user_summary(conn: Connection, user_id: int) -> Mapping[str, Any] | None:
    return await fetch_one(conn, _USER_SUMMARY, user_id)


async def set_password(conn: Connection, user_id: int, password_hash: str) -> None:
    await execute(conn, _SET_PASSWORD, user_id, password_hash)


async def make_admin(conn: Connection, user_id: int) -> None:
    await execute(conn, _MAKE_ADMIN, user_id)


# --- API tokens and sessions -----------------------------------------------------------------

# $1 user, $2 kind, $3 name, $4 token hash, $5 expires at.
_INSERT_TOKEN = (
    "INSERT INTO api_tokens (user_id, kind, name, token_hash, expires_at)"
    " VALUES ($1, $2, $3, $4, $5)"
    " RETURNING id, name, kind, created_at, expires_at, revoked_at"
)
_PRINCIPAL_BY_TOKEN = (
    "SELECT t.id AS token_id, t.kind AS token_kind, t.expires_at AS token_expires_at,"
    " u.id AS user_id, u.email, u.is_admin"
    " FROM api_tokens t JOIN users u ON u.id = t.user_id"
    " WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
    "   AND (t.expires_at IS NULL OR t.expires_at > now())"
)
_LIST_TOKENS = (
    "SELECT id, name, kind, created_at, expires_at, revoked_at FROM api_tokens"
    " WHERE user_id = $1 ORDER BY id"
)
_REVOKE_TOKEN = (
    "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())"
    " WHERE user_id = $1 AND id = $2 RETURNING id"
)
# $1 user, $2 the token to keep (NULL: none).
_REVOKE_TOKENS = (
    "UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1"
    " AND revoked_at IS NULL AND ($2::bigint IS NULL OR id <> $2)"
)


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
    deactivated = participant.where(p.c.deactivated_at.is_not(None)).exists()
    return (
        select(
            t.c.id.label("token_id"),
            u.c.id.label("user_id"),
            u.c.email,
            u.c.is_admin,
            b.c.id.label("timebank_id"),
            func.ARRAY(roles.scalar_subquery()).label("roles"),
            participant.scalar_subquery().label("participant_id"),
            deactivated.label("participant_deactivated"),
        )
        .select_from(t.join(u, u.c.id == t.c.user_id).outerjoin(b, b.c.slug == slug))
        .where(
            t.c.token_hash == token_hash,
            t.c.revoked_at.is_(None),
            or_(t.c.expires_at.is_(None), t.c.expires_at > func.now()),
        )
    )


_PRINCIPAL_IN_TIMEBANK = compiled_sql(principal_in_timebank_query(arg(1), arg(2)))


async def insert_token(
    conn: Connection,
    *,
    user_id: int,
    kind: str,
    name: str,
    token_hash: bytes,
    expires_at: datetime,
) -> Mapping[str, Any]:
    row = await fetch_one(conn, _INSERT_TOKEN, user_id, kind, name, token_hash, expires_at)
    assert row is not None
    return row


async def principal_by_token(conn: Connection, token_hash: bytes) -> Mapping[str, Any] | None:
    return await fetch_one(conn, _PRINCIPAL_BY_TOKEN, token_hash)


async def principal_in_timebank(
    conn: Connection, token_hash: bytes, slug: str
) -> Mapping[str, Any] | None:
    """Who a token is and what they are in timebank ``slug``, in one statement (on a plain
    asyncpg connection on the hot path): None for no live token; ``timebank_id`` is None when
    no timebank has that slug, ``roles`` empty and ``participant_id`` None when the user has
    no part in it."""
    return await fetch_one(conn, _PRINCIPAL_IN_TIMEBANK, token_hash, slug)


async def list_tokens(conn: Connection, user_id: int) -> Sequence[Mapping[str, Any]]:
    return await fetch(conn, _LIST_TOKENS, user_id)


async def revoke_token(conn: Connection, user_id: int, token_id: int) -> bool:
    return await fetch_one(conn, _REVOKE_TOKEN, user_id, token_id) is not None


async def revoke_tokens(conn: Connection, user_id: int, *, keep: int | None = None) -> None:
    """End the user's sessions and API tokens, except token ``keep``."""
    await execute(conn, _REVOKE_TOKENS, user_id, keep)


# --- Password resets -------------------------------------------------------------------------

_CLOSE_PASSWORD_RESETS = (
    "UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL"
)
_INSERT_PASSWORD_RESET = (
    "INSERT INTO password_resets (user_id, token_hash, expires_at) VALUES ($1, $2, $3)"
)
_OPEN_PASSWORD_RESET = (
    "SELECT u.id, u.email FROM password_resets r JOIN users u ON u.id = r.user_id"
    " WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > now()"
)
_TAKE_PASSWORD_RESET = (
    "UPDATE password_resets SET used_at = now() WHERE token_hash = $1"
    " AND used_at IS NULL AND expires_at > now() RETURNING user_id"
)


async def insert_password_reset(
    conn: Connection, *, user_id: int, token_hash: bytes, expires_at: datetime
) -> None:
    """A new reset for the user; any earlier one still open stops working."""
    await execute(conn, _CLOSE_PASSWORD_RESETS, user_id)
    await execute(conn, _INSERT_PASSWORD_RESET, user_id, token_hash, expires_at)


async def open_password_reset(conn: Connection, token_hash: bytes) -> Mapping[str, Any] | None:
    """The user of an unused, unexpired reset (id, email), or None."""
    return await fetch_one(conn, _OPEN_PASSWORD_RESET, token_hash)


async def take_password_reset(conn: Connection, token_hash: bytes) -> int | None:
    """Mark an open reset used (once); its user's id, or None."""
    return await fetch_value(conn, _TAKE_PASSWORD_RESET, token_hash)


# --- Roles in timebanks: the user is $1, the timebank $2 wherever both are named -------------

_TIMEBANK_ID = "SELECT id FROM timebanks WHERE slug = $1"
_ROLES_IN = (
    "SELECT ARRAY(SELECT r.role FROM timebank_roles r"
    "   WHERE r.user_id = $1 AND r.timebank_id = $2) AS roles,"
    " (SELECT p.id FROM participants p"
    "   WHERE p.user_id = $1 AND p.timebank_id = $2) AS participant_id,"
    " EXISTS (SELECT 1 FROM participants p WHERE p.user_id = $1 AND p.timebank_id = $2"
    "   AND p.deactivated_at IS NOT NULL) AS participant_deactivated"
)
_MEMBERSHIPS = (
    "SELECT t.slug, t.name, array_agg(r.role ORDER BY r.role) AS roles,"
    " (SELECT p.id FROM participants p WHERE p.timebank_id = t.id"
    "   AND p.user_id = $1) AS participant_id"
    " FROM timebank_roles r JOIN timebanks t ON t.id = r.timebank_id"
    " WHERE r.user_id = $1 GROUP BY t.id ORDER BY t.slug"
)
_GRANT_ROLE = (
    "INSERT INTO timebank_roles (user_id, timebank_id, role) VALUES ($1, $2, $3)"
    " ON CONFLICT DO NOTHING"
)
_REVOKE_ROLES_EXCEPT = (
    "DELETE FROM timebank_roles WHERE user_id = $1 AND timebank_id = $2 AND NOT (role = ANY($3))"
)
_LOCK_ROLES = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
_ROLES = "SELECT role FROM timebank_roles WHERE user_id = $1 AND timebank_id = $2 ORDER BY role"
# $3 participant, $4 changed by, $5 invitation, $6 roles before, $7 roles after.
_RECORD_ROLE_CHANGE = (
    "INSERT INTO role_changes (user_id, timebank_id, participant_id, changed_by,"
    " invitation_id, from_roles, to_roles) VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
# $1 timebank; $2 one participant and $3 one user, each NULL for any.
_ROLE_CHANGES = (
    "SELECT id, user_id, participant_id, changed_by, invitation_id, from_roles,"
    " to_roles, changed_at FROM role_changes WHERE timebank_id = $1"
    "   AND ($2::bigint IS NULL OR participant_id = $2)"
    "   AND ($3::bigint IS NULL OR user_id = $3)"
    " ORDER BY id"
)
_ROLES_ANYWHERE = (
    "SELECT coalesce((SELECT u.is_admin FROM users u WHERE u.id = $1), false) AS is_admin,"
    " ARRAY(SELECT DISTINCT r.role FROM timebank_roles r WHERE r.user_id = $1) AS roles"
)


async def timebank_id(conn: Connection, slug: str) -> int | None:
    return await fetch_value(conn, _TIMEBANK_ID, slug)


async def roles_in(
    conn: Connection, user_id: int, timebank_id: int
) -> tuple[frozenset[str], int | None, bool]:
    """The user's roles in the timebank, the participant they act as there (if any), and
    whether a coordinator deactivated that participant."""
    row = await fetch_one(conn, _ROLES_IN, user_id, timebank_id)
    assert row is not None, "a SELECT without FROM returns one row"
    return frozenset(row["roles"]), row["participant_id"], row["participant_deactivated"]


async def memberships(conn: Connection, user_id: int) -> Sequence[Mapping[str, Any]]:
    return await fetch(conn, _MEMBERSHIPS, user_id)


async def grant_role(conn: Connection, timebank_id: int, user_id: int, role: str) -> None:
    await execute(conn, _GRANT_ROLE, user_id, timebank_id, role)


async def revoke_roles_except(
    conn: Connection, timebank_id: int, user_id: int, keep: list[str]
) -> None:
    await execute(conn, _REVOKE_ROLES_EXCEPT, user_id, timebank_id, keep)


async def lock_roles(conn: Connection, timebank_id: int, user_id: int) -> list[str]:
    """The user's roles in the timebank, sorted; changes to them wait until this transaction
    ends, so that the change recorded is the change made."""
    await execute(conn, _LOCK_ROLES, f"roles:{timebank_id}:{user_id}")
    return [row["role"] for row in await fetch(conn, _ROLES, user_id, timebank_id)]


async def record_role_change(
    conn: Connection,
    *,
    timebank_id: int,
    user_id: int,
    participant_id: int | None,
    changed_by: int | None,
    invitation_id: int | None,
    from_roles: list[str],
    to_roles: list[str],
) -> None:
    await execute(
        conn,
        _RECORD_ROLE_CHANGE,
        user_id,
        timebank_id,
        participant_id,
        changed_by,
        invitation_id,
        from_roles,
        to_roles,
    )


async def role_changes(
    conn: Connection,
    timebank_id: int,
    *,
    participant_id: int | None = None,
    user_id: int | None = None,
) -> Sequence[Mapping[str, Any]]:
    """The recorded role changes in a timebank, oldest first: of one participant, or of one
    user (whoever's they are), or all."""
    return await fetch(conn, _ROLE_CHANGES, timebank_id, participant_id, user_id)


async def roles_anywhere(conn: Connection, user_id: int) -> tuple[bool, frozenset[str]]:
    """Whether the user is a site admin, and the roles they hold in any timebank: what
    ``timebank.auth.schemas.has_part`` decides from."""
    row = await fetch_one(conn, _ROLES_ANYWHERE, user_id)
    assert row is not None, "a SELECT without FROM returns one row"
    return row["is_admin"], frozenset(row["roles"])
