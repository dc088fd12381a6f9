"""SQL for timebanks, participants, accounts and categories. Every query of a tenant row is
scoped by ``timebank_id``. Statements built from column lists (the policy's, a participant's
full view) are composed on ``timebank.db.tables`` and compiled once, at import."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Select,
    Text,
    and_,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import FromClause

from timebank.db import tables
from timebank.db.compose import arg, compiled_sql, unless_null
from timebank.db.statements import execute, fetch, fetch_one
from timebank.errors import NotFound
from timebank.participants.schemas import (
    POLICY_FIELDS,
    TimebankPolicy,
    TimebankRecord,
)

# --- Timebanks -----------------------------------------------------------------------------

_t = tables.timebanks.alias("t")
_fund = tables.accounts.alias("a")
_TIMEBANKS = select(
    _t.c.id,
    _t.c.slug,
    _t.c.name,
    *(_t.c[name] for name in POLICY_FIELDS),
    _fund.c.id.label("fund_id"),
).select_from(
    _t.join(_fund, and_(_fund.c.timebank_id == _t.c.id, _fund.c.system_role == "community_fund"))
)
_TIMEBANK_BY_SLUG = compiled_sql(_TIMEBANKS.where(_t.c.slug == arg(1)))
_TIMEBANK_BY_ID = compiled_sql(_TIMEBANKS.where(_t.c.id == arg(1)))
_TIMEBANK_BY_ID_LOCKED = compiled_sql(
    _TIMEBANKS.where(_t.c.id == arg(1)).with_for_update(of=_t, key_share=True)
)

# $1 slug, $2 name, then the policy's fields in the order of POLICY_FIELDS.
_policy_args = {name: arg(n) for n, name in enumerate(POLICY_FIELDS, start=3)}
_INSERT_TIMEBANK = compiled_sql(
    insert(tables.timebanks)
    .values(slug=arg(1), name=arg(2), **_policy_args)
    .returning(tables.timebanks.c.id)
)
_INSERT_FUND = (
    "INSERT INTO accounts (timebank_id, system_role) VALUES ($1, 'community_fund') RETURNING id"
)
# $1 the timebank, $2 its name, then the policy's fields.
_UPDATE_TIMEBANK = compiled_sql(
    update(tables.timebanks)
    .where(tables.timebanks.c.id == arg(1))
    .values(name=arg(2), **_policy_args)
)
_SLUG_TAKEN = "SELECT 1 FROM timebanks WHERE slug = $1"


def _timebank(row: Mapping[str, Any]) -> TimebankRecord:
    return TimebankRecord(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        community_fund_account_id=row["fund_id"],
        policy=TimebankPolicy(**{name: row[name] for name in POLICY_FIELDS}),
    )


def _policy_values(policy: TimebankPolicy) -> list[Any]:
    fields = policy.as_dict()
    return [fields[name] for name in POLICY_FIELDS]


async def insert_timebank(
    conn: AsyncConnection, slug: str, name: str, policy: TimebankPolicy
) -> TimebankRecord:
    inserted = await fetch_one(conn, _INSERT_TIMEBANK, slug, name, *_policy_values(policy))
    assert inserted is not None, "an INSERT … RETURNING returns its row"
    fund = await fetch_one(conn, _INSERT_FUND, inserted["id"])
    assert fund is not None, "an INSERT … RETURNING returns its row"
    return TimebankRecord(
        id=inserted["id"],
        slug=slug,
        name=name,
        community_fund_account_id=fund["id"],
        policy=policy,
    )


async def update_timebank(
    conn: AsyncConnection, timebank_id: int, name: str, policy: TimebankPolicy
) -> None:
    await execute(conn, _UPDATE_TIMEBANK, timebank_id, name, *_policy_values(policy))


async def slug_taken(conn: AsyncConnection, slug: str) -> bool:
    return await fetch_one(conn, _SLUG_TAKEN, slug) is not None


async def get_timebank(conn: AsyncConnection, slug: str) -> TimebankRecord:
    row = await fetch_one(conn, _TIMEBANK_BY_SLUG, slug)
    if row is None:
        raise NotFound(f"timebank {slug!r} not found")
    return _timebank(row)


async def get_timebank_by_id(
    conn: AsyncConnection, timebank_id: int, *, for_update: bool = False
) -> TimebankRecord:
    sql = _TIMEBANK_BY_ID_LOCKED if for_update else _TIMEBANK_BY_ID
    row = await fetch_one(conn, sql, timebank_id)
    if row is None:
        raise NotFound(f"timebank {timebank_id} not found")
    return _timebank(row)


# --- Participants ------------------------------------------------------------------------------

_INSERT_PARTICIPANT = (
    "INSERT INTO participants (timebank_id, kind, display_name, joined_on, user_id, email,"
    " phone, postal_address, contact_preference, external_id)"
    " VALUES ($1, $2, $3, coalesce($4, current_date), $5, $6, $7, $8, coalesce($9, 'email'),"
    " $10) RETURNING id, joined_on"
)
_INSERT_ACCOUNT = (
    "INSERT INTO accounts (timebank_id, participant_id, floor, ceiling)"
    " VALUES ($1, $2, $3, $4) RETURNING id"
)


async def insert_participant(
    conn: AsyncConnection,
    timebank: TimebankRecord,
    kind: str,
    display_name: str,
    joined_on: date | None,
    user_id: int | None = None,
    contact: Mapping[str, Any] | None = None,
) -> tuple[int, date, int]:
    """Insert a participant (with ``contact``: their email, phone, postal_address,
    contact_preference and external_id, each optional) and their account (limits from the
    timebank's policy)."""
    how = contact or {}
    row = await fetch_one(
        conn,
        _INSERT_PARTICIPANT,
        timebank.id,
        kind,
        display_name,
        joined_on,
        user_id,
        *(how.get(name) for name in CONTACT_COLUMNS),
    )
    assert row is not None, "an INSERT … RETURNING returns its row"
    limits = timebank.policy.default_floor_minutes, timebank.policy.default_ceiling_minutes
    account = await fetch_one(conn, _INSERT_ACCOUNT, timebank.id, row["id"], *limits)
    assert account is not None, "an INSERT … RETURNING returns its row"
    return row["id"], row["joined_on"], account["id"]


def _participants(*, full: bool) -> tuple[Select[Any], FromClause]:
    """The participants of a timebank, as a select and its participant table ``p``: in full
    (the participant, their account, their address and their user's roles) or as the
    directory shows them (id, kind, name)."""
    p = tables.participants.alias("p")
    if not full:
        return select(p.c.id, p.c.kind, p.c.display_name), p
    a, u = tables.accounts.alias("a"), tables.users.alias("u")
    i, r = tables.invitations.alias("i"), tables.timebank_roles.alias("r")
    # Of whoever joined as them (by accepting an invitation of this timebank), else that of
    # their last invitation; never a user's found by address elsewhere.
    last_invited = (
        select(i.c.email)
        .where(i.c.timebank_id == p.c.timebank_id, i.c.participant_id == p.c.id)
        .order_by(i.c.id.desc())
        .limit(1)
    )
    roles = (
        select(r.c.role)
        .where(r.c.timebank_id == p.c.timebank_id, r.c.user_id == p.c.user_id)
        .order_by(r.c.role)
    )
    account = and_(a.c.timebank_id == p.c.timebank_id, a.c.participant_id == p.c.id)
    full_view = select(
        *(p.c[name] for name in ("id", "kind", "display_name", "joined_on", "user_id")),
        a.c.id.label("account_id"),
        *(a.c[name].label(f"{name}_minutes") for name in _ACCOUNT_MINUTES),
        func.coalesce(p.c.email, u.c.email, last_invited.scalar_subquery()).label("email"),
        *(p.c[name] for name in CONTACT_COLUMNS[1:]),
        p.c.deactivated_at,
        p.c.user_id.is_not(None).label("signed_up"),
        func.coalesce(func.ARRAY(roles.scalar_subquery()), literal("{}")).label("roles"),
    )
    return full_view.select_from(p.join(a, account).outerjoin(u, u.c.id == p.c.user_id)), p


_ACCOUNT_MINUTES = ("balance", "pending_in", "pending_out", "floor", "ceiling")
CONTACT_COLUMNS = ("email", "phone", "postal_address", "contact_preference", "external_id")


_full, _p = _participants(full=True)
_PARTICIPANT = compiled_sql(_full.where(_p.c.timebank_id == arg(1), _p.c.id == arg(2)))


def _page(*, full: bool) -> str:
    """A page of participants ($1 timebank, $2 after this id, $3 a name contains this, $4 at
    most so many, $5 true: only those not deactivated), in full or as the directory shows
    them."""
    listed, p = _participants(full=full)
    name_contains = func.strpos(func.lower(p.c.display_name), func.lower(arg(3))) > 0
    return compiled_sql(
        listed.where(
            p.c.timebank_id == arg(1),
            unless_null(arg(2), BigInteger, p.c.id > arg(2)),
            unless_null(arg(3), Text, name_contains),
            or_(~cast(arg(5), Boolean), p.c.deactivated_at.is_(None)),
        )
        .order_by(p.c.id)
        .limit(arg(4))
    )


_PAGE_IN_FULL = _page(full=True)
_DIRECTORY_PAGE = _page(full=False)


async def get_participant(
    conn: AsyncConnection, timebank_id: int, participant_id: int
) -> Mapping[str, Any]:
    row = await fetch_one(conn, _PARTICIPANT, timebank_id, participant_id)
    if row is None:
        raise NotFound(f"participant {participant_id} not found in this timebank")
    return row


async def list_participants(
    conn: AsyncConnection,
    timebank_id: int,
    *,
    full: bool,
    name_contains: str | None,
    after_id: int | None,
    limit: int,
    active_only: bool = False,
) -> list[Mapping[str, Any]]:
    """Participants in id order after ``after_id`` (keyset pagination), optionally those whose
    name contains ``name_contains`` (case-insensitively; no wildcards), optionally only those
    not deactivated."""
    sql = _PAGE_IN_FULL if full else _DIRECTORY_PAGE
    return list(await fetch(conn, sql, timebank_id, after_id, name_contains, limit, active_only))


# The participant of timebank $1 with address $2 (see ``_participants``), other than $3, if any.
_PARTICIPANT_WITH_EMAIL = (
    "SELECT id FROM ("
    " SELECT p.id FROM participants p WHERE p.timebank_id = $1 AND lower(p.email) = lower($2)"
    " UNION ALL"
    " SELECT p.id FROM users u JOIN participants p"
    "   ON p.user_id = u.id AND p.timebank_id = $1"
    " WHERE lower(u.email) = lower($2)"
    " UNION ALL"
    " SELECT p.id FROM invitations i JOIN participants p"
    "   ON p.timebank_id = i.timebank_id AND p.id = i.participant_id"
    " WHERE i.timebank_id = $1 AND lower(i.email) = lower($2)"
    "   AND p.user_id IS NULL AND i.id = (SELECT max(j.id) FROM invitations j"
    "     WHERE j.timebank_id = i.timebank_id AND j.participant_id = p.id)"
    ") AS holders WHERE id IS DISTINCT FROM CAST($3 AS bigint) LIMIT 1"
)
_LAST_INVITATION = (
    "SELECT email, roles FROM invitations WHERE timebank_id = $1 AND participant_id = $2"
    " ORDER BY id DESC LIMIT 1"
)
# For staff ($2 null): the open invitations of the address $3 without a participant.
_EXPIRE_OPEN_INVITATIONS = (
    "UPDATE invitations SET expires_at = now()"
    " WHERE timebank_id = $1 AND accepted_at IS NULL AND expires_at > now()"
    "   AND CASE WHEN CAST($2 AS bigint) IS NULL"
    "       THEN participant_id IS NULL AND lower(email) = lower($3)"
    "       ELSE participant_id = $2 END"
)


# Until the transaction ends, whoever takes the lock named $1 waits for whoever holds it.
LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


async def participant_with_email(
    conn: AsyncConnection, timebank_id: int, email: str, *, but: int | None = None
) -> int | None:
    """The participant of this timebank (other than ``but``) with this address (recorded to
    reach them, or see ``_participants``), if any. Uses of one address take turns until the
    transaction ends."""
    await fetch(conn, LOCK, f"participant-email:{timebank_id}:{email.lower()}")
    row = await fetch_one(conn, _PARTICIPANT_WITH_EMAIL, timebank_id, email, but)
    return row["id"] if row is not None else None


async def last_invitation(
    conn: AsyncConnection, timebank_id: int, participant_id: int
) -> Mapping[str, Any] | None:
    """The address and roles of the participant's latest invitation, if they had one."""
    return await fetch_one(conn, _LAST_INVITATION, timebank_id, participant_id)


async def expire_open_invitations(
    conn: AsyncConnection, timebank_id: int, *, participant_id: int | None, email: str
) -> None:
    """A fresh invitation replaces the open ones of the same participant (for staff: of the
    same address, without a participant): only the newest token works."""
    await execute(conn, _EXPIRE_OPEN_INVITATIONS, timebank_id, participant_id, email)


# --- Staff: users with roles and no participant ------------------------------------------------


def _staff_statements() -> tuple[str, str]:
    """The staff of timebank $1, in user order; one of them, user $2."""
    r = tables.timebank_roles.alias("r")
    u = tables.users.alias("u")
    p = tables.participants.alias("p")
    has_participant = select(literal(1)).where(
        p.c.timebank_id == r.c.timebank_id, p.c.user_id == r.c.user_id
    )
    staff = (
        select(
            u.c.id.label("user_id"),
            u.c.display_name,
            u.c.email,
            func.array_agg(aggregate_order_by(r.c.role, r.c.role)).label("roles"),
        )
        .select_from(r.join(u, u.c.id == r.c.user_id))
        .where(r.c.timebank_id == arg(1), ~has_participant.exists())
        .group_by(u.c.id)
    )
    return compiled_sql(staff.order_by(u.c.id)), compiled_sql(staff.where(r.c.user_id == arg(2)))


_STAFF, _STAFF_MEMBER = _staff_statements()


async def list_staff(conn: AsyncConnection, timebank_id: int) -> list[Mapping[str, Any]]:
    return list(await fetch(conn, _STAFF, timebank_id))


async def staff_member(
    conn: AsyncConnection, timebank_id: int, user_id: int
) -> Mapping[str, Any] | None:
    return await fetch_one(conn, _STAFF_MEMBER, timebank_id, user_id)


# --- Categories --------------------------------------------------------------------------------

# $1 the timebank, $2 the slugs, $3 their names in the same order.
_INSERT_CATEGORIES = (
    "INSERT INTO categories (timebank_id, slug, name) SELECT $1, c.slug, c.name"
    " FROM unnest(CAST($2 AS text[]), CAST($3 AS text[])) AS c(slug, name)"
)
_INSERT_CATEGORY = (
    "INSERT INTO categories (timebank_id, slug, name) VALUES ($1, $2, $3)"
    " ON CONFLICT ON CONSTRAINT categories_timebank_id_slug_key DO NOTHING"
    " RETURNING id, slug, name"
)
_CATEGORIES = "SELECT id, slug, name FROM categories WHERE timebank_id = $1 ORDER BY name, id"


async def insert_categories(conn: AsyncConnection, timebank_id: int, names: dict[str, str]) -> None:
    await execute(conn, _INSERT_CATEGORIES, timebank_id, list(names), list(names.values()))


async def insert_category(
    conn: AsyncConnection, timebank_id: int, slug: str, name: str
) -> Mapping[str, Any] | None:
    """The new category, or None if the timebank has one with this slug already."""
    return await fetch_one(conn, _INSERT_CATEGORY, timebank_id, slug, name)


async def list_categories(conn: AsyncConnection, timebank_id: int) -> list[Mapping[str, Any]]:
    return list(await fetch(conn, _CATEGORIES, timebank_id))
