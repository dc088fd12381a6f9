"""SQL for timebanks, participants, accounts and categories. Every query of a tenant row is
scoped by ``timebank_id``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.errors import NotFound
from timebank.participants.schemas import (
    POLICY_FIELDS,
    TimebankPolicy,
    TimebankRecord,
)

_POLICY_COLUMNS = ", ".join(f"t.{name}" for name in POLICY_FIELDS)
_SELECT_TIMEBANK = (
    f"SELECT t.id, t.slug, t.name, {_POLICY_COLUMNS}, a.id AS fund_id"
    " FROM timebanks t JOIN accounts a"
    "   ON a.timebank_id = t.id AND a.system_role = 'community_fund'"
)


def _timebank(row: Mapping[str, Any]) -> TimebankRecord:
    return TimebankRecord(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        community_fund_account_id=row["fund_id"],
        policy=TimebankPolicy(**{name: row[name] for name in POLICY_FIELDS}),
    )


async def insert_timebank(
    conn: AsyncConnection, slug: str, name: str, policy: TimebankPolicy
) -> TimebankRecord:
    columns = ", ".join(POLICY_FIELDS)
    values = ", ".join(f":{name}" for name in POLICY_FIELDS)
    timebank_id = (
        await conn.execute(
            text(
                f"INSERT INTO timebanks (slug, name, {columns})"
                f" VALUES (:slug, :name, {values}) RETURNING id"
            ),
            {"slug": slug, "name": name, **policy.as_dict()},
        )
    ).scalar_one()
    fund_id = (
        await conn.execute(
            text(
                "INSERT INTO accounts (timebank_id, system_role)"
                " VALUES (:timebank_id, 'community_fund') RETURNING id"
            ),
            {"timebank_id": timebank_id},
        )
    ).scalar_one()
    return TimebankRecord(
        id=timebank_id, slug=slug, name=name, community_fund_account_id=fund_id, policy=policy
    )


async def update_timebank(
    conn: AsyncConnection, timebank_id: int, name: str, policy: TimebankPolicy
) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in POLICY_FIELDS)
    await conn.execute(
        text(f"UPDATE timebanks SET name = :name, {assignments} WHERE id = :id"),
        {"id": timebank_id, "name": name, **policy.as_dict()},
    )


async def slug_taken(conn: AsyncConnection, slug: str) -> bool:
    found = await conn.execute(text("SELECT 1 FROM timebanks WHERE slug = :slug"), {"slug": slug})
    return found.first() is not None


async def get_timebank(conn: AsyncConnection, slug: str) -> TimebankRecord:
    row = (
        (await conn.execute(text(_SELECT_TIMEBANK + " WHERE t.slug = :slug"), {"slug": slug}))
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound(f"timebank {slug!r} not found")
    return _timebank(dict(row))


async def get_timebank_by_id(
    conn: AsyncConnection, timebank_id: int, *, for_update: bool = False
) -> TimebankRecord:
    sql = _SELECT_TIMEBANK + " WHERE t.id = :id" + (" FOR NO KEY UPDATE OF t" if for_update else "")
    row = (await conn.execute(text(sql), {"id": timebank_id})).mappings().one_or_none()
    if row is None:
        raise NotFound(f"timebank {timebank_id} not found")
    return _timebank(dict(row))


# --- Idempotency keys (the ledger's table; see schema/sql/tables/ledger.sql) --------------


async def lock_key(conn: AsyncConnection, author: str, key: str) -> None:
    """Serialise requests under one (author, key) that has no timebank yet, until commit."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
        {"name": f"idempotency:{author}:{key}"},
    )


async def keys_of_author(conn: AsyncConnection, author: str, key: str) -> list[Mapping[str, Any]]:
    """Every use of ``key`` by ``author``, in any timebank."""
    rows = await conn.execute(
        text(
            "SELECT timebank_id, request_hash, result FROM idempotency_keys"
            " WHERE author = :author AND key = :key"
        ),
        {"author": author, "key": key},
    )
    return [dict(row) for row in rows.mappings()]


# --- Participants ------------------------------------------------------------------------------


async def insert_participant(
    conn: AsyncConnection,
    timebank: TimebankRecord,
    kind: str,
    display_name: str,
    joined_on: date | None,
    user_id: int | None = None,
) -> tuple[int, date, int]:
    """Insert a participant and their account (limits from the timebank's policy)."""
    row = (
        await conn.execute(
            text(
                "INSERT INTO participants (timebank_id, kind, display_name, joined_on, user_id)"
                " VALUES (:timebank_id, :kind, :display_name, coalesce(:joined_on, current_date),"
                " :user_id) RETURNING id, joined_on"
            ),
            {
                "timebank_id": timebank.id,
                "kind": kind,
                "display_name": display_name,
                "joined_on": joined_on,
                "user_id": user_id,
            },
        )
    ).one()
    account_id = (
        await conn.execute(
            text(
                "INSERT INTO accounts (timebank_id, participant_id, floor, ceiling)"
                " VALUES (:timebank_id, :participant_id, :floor, :ceiling) RETURNING id"
            ),
            {
                "timebank_id": timebank.id,
                "participant_id": row.id,
                "floor": timebank.policy.default_floor_minutes,
                "ceiling": timebank.policy.default_ceiling_minutes,
            },
        )
    ).scalar_one()
    return row.id, row.joined_on, account_id


# The address of a participant of this timebank: of whoever joined as them (by accepting an
# invitation of this timebank), else that of their last invitation. Never a user's found by
# address elsewhere.
_PARTICIPANT_EMAIL = (
    "coalesce(u.email, (SELECT i.email FROM invitations i"
    "   WHERE i.timebank_id = p.timebank_id AND i.participant_id = p.id"
    "   ORDER BY i.id DESC LIMIT 1))"
)
# The full view: the participant, their account, their address, and their user's roles.
_PARTICIPANT_COLUMNS = (
    "p.id, p.kind, p.display_name, p.joined_on, p.user_id,"
    " a.id AS account_id, a.balance AS balance_minutes,"
    " a.pending_in AS pending_in_minutes, a.pending_out AS pending_out_minutes,"
    " a.floor AS floor_minutes, a.ceiling AS ceiling_minutes,"
    f" {_PARTICIPANT_EMAIL} AS email, p.user_id IS NOT NULL AS signed_up,"
    " coalesce(ARRAY(SELECT r.role FROM timebank_roles r"
    "   WHERE r.timebank_id = p.timebank_id AND r.user_id = p.user_id ORDER BY r.role),"
    "   '{}') AS roles"
)
_PARTICIPANT_FROM = (
    " FROM participants p"
    " JOIN accounts a ON a.timebank_id = p.timebank_id AND a.participant_id = p.id"
    " LEFT JOIN users u ON u.id = p.user_id"
)
_DIRECTORY_COLUMNS = "p.id, p.kind, p.display_name"


async def get_participant(
    conn: AsyncConnection, timebank_id: int, participant_id: int
) -> Mapping[str, Any]:
    row = (
        (
            await conn.execute(
                text(
                    f"SELECT {_PARTICIPANT_COLUMNS}{_PARTICIPANT_FROM}"
                    " WHERE p.timebank_id = :timebank_id AND p.id = :id"
                ),
                {"timebank_id": timebank_id, "id": participant_id},
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound(f"participant {participant_id} not found in this timebank")
    return dict(row)


async def list_participants(
    conn: AsyncConnection,
    timebank_id: int,
    *,
    full: bool,
    name_contains: str | None,
    after_id: int | None,
    limit: int,
) -> list[Mapping[str, Any]]:
    """Participants in id order after ``after_id`` (keyset pagination), optionally those whose
    name contains ``name_contains`` (case-insensitively; no wildcards)."""
    columns, source = (
        (_PARTICIPANT_COLUMNS, _PARTICIPANT_FROM)
        if full
        else (_DIRECTORY_COLUMNS, " FROM participants p")
    )
    rows = await conn.execute(
        text(
            f"SELECT {columns}{source}"
            " WHERE p.timebank_id = :timebank_id"
            "   AND (CAST(:after_id AS bigint) IS NULL OR p.id > :after_id)"
            "   AND (CAST(:q AS text) IS NULL OR strpos(lower(p.display_name), lower(:q)) > 0)"
            " ORDER BY p.id LIMIT :limit"
        ),
        {"timebank_id": timebank_id, "after_id": after_id, "q": name_contains, "limit": limit},
    )
    return [dict(row) for row in rows.mappings()]


async def participant_with_email(conn: AsyncConnection, timebank_id: int, email: str) -> int | None:
    """The participant of this timebank with this address (see ``_PARTICIPANT_EMAIL``), if
    any. Additions of one address take turns until the transaction ends."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
        {"name": f"participant-email:{timebank_id}:{email.lower()}"},
    )
    return (
        await conn.execute(
            text(
                "SELECT p.id FROM users u JOIN participants p"
                "   ON p.user_id = u.id AND p.timebank_id = :timebank_id"
                " WHERE lower(u.email) = lower(:email)"
                " UNION ALL"
                " SELECT p.id FROM invitations i JOIN participants p"
                "   ON p.timebank_id = i.timebank_id AND p.id = i.participant_id"
                " WHERE i.timebank_id = :timebank_id AND lower(i.email) = lower(:email)"
                "   AND p.user_id IS NULL AND i.id = (SELECT max(j.id) FROM invitations j"
                "     WHERE j.timebank_id = i.timebank_id AND j.participant_id = p.id)"
                " LIMIT 1"
            ),
            {"timebank_id": timebank_id, "email": email},
        )
    ).scalar_one_or_none()


async def last_invitation(
    conn: AsyncConnection, timebank_id: int, participant_id: int
) -> Mapping[str, Any] | None:
    """The address and roles of the participant's latest invitation, if they had one."""
    row = (
        (
            await conn.execute(
                text(
                    "SELECT email, roles FROM invitations"
                    " WHERE timebank_id = :timebank_id AND participant_id = :participant_id"
                    " ORDER BY id DESC LIMIT 1"
                ),
                {"timebank_id": timebank_id, "participant_id": participant_id},
            )
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row is not None else None


async def expire_open_invitations(
    conn: AsyncConnection, timebank_id: int, *, participant_id: int | None, email: str
) -> None:
    """A fresh invitation replaces the open ones of the same participant (for staff: of the
    same address, without a participant): only the newest token works."""
    await conn.execute(
        text(
            "UPDATE invitations SET expires_at = now()"
            " WHERE timebank_id = :timebank_id AND accepted_at IS NULL AND expires_at > now()"
            "   AND CASE WHEN CAST(:participant_id AS bigint) IS NULL"
            "       THEN participant_id IS NULL AND lower(email) = lower(:email)"
            "       ELSE participant_id = :participant_id END"
        ),
        {"timebank_id": timebank_id, "participant_id": participant_id, "email": email},
    )


# --- Staff: users with roles and no participant ------------------------------------------------

_STAFF = (
    "SELECT u.id AS user_id, u.display_name, u.email,"
    " array_agg(r.role ORDER BY r.role) AS roles"
    " FROM timebank_roles r JOIN users u ON u.id = r.user_id"
    " WHERE r.timebank_id = :timebank_id AND NOT EXISTS (SELECT 1 FROM participants p"
    "   WHERE p.timebank_id = r.timebank_id AND p.user_id = r.user_id)"
)


async def list_staff(conn: AsyncConnection, timebank_id: int) -> list[Mapping[str, Any]]:
    rows = await conn.execute(
        text(_STAFF + " GROUP BY u.id ORDER BY u.id"), {"timebank_id": timebank_id}
    )
    return [dict(row) for row in rows.mappings()]


async def staff_member(
    conn: AsyncConnection, timebank_id: int, user_id: int
) -> Mapping[str, Any] | None:
    row = (
        (
            await conn.execute(
                text(_STAFF + " AND r.user_id = :user_id GROUP BY u.id"),
                {"timebank_id": timebank_id, "user_id": user_id},
            )
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row is not None else None


# --- Categories --------------------------------------------------------------------------------


async def insert_categories(conn: AsyncConnection, timebank_id: int, names: dict[str, str]) -> None:
    await conn.execute(
        text(
            "INSERT INTO categories (timebank_id, slug, name) VALUES (:timebank_id, :slug, :name)"
        ),
        [{"timebank_id": timebank_id, "slug": slug, "name": name} for slug, name in names.items()],
    )


async def insert_category(
    conn: AsyncConnection, timebank_id: int, slug: str, name: str
) -> Mapping[str, Any] | None:
    """The new category, or None if the timebank has one with this slug already."""
    row = (
        (
            await conn.execute(
                text(
                    "INSERT INTO categories (timebank_id, slug, name)"
                    " VALUES (:timebank_id, :slug, :name)"
                    " ON CONFLICT ON CONSTRAINT categories_timebank_id_slug_key DO NOTHING"
                    " RETURNING id, slug, name"
                ),
                {"timebank_id": timebank_id, "slug": slug, "name": name},
            )
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row is not None else None


async def list_categories(conn: AsyncConnection, timebank_id: int) -> list[Mapping[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT id, slug, name FROM categories WHERE timebank_id = :timebank_id"
            " ORDER BY name, id"
        ),
        {"timebank_id": timebank_id},
    )
    return [dict(row) for row in rows.mappings()]
