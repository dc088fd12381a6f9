"""SQL of group sessions: their rows, their legs (exchange rows with ``group_id``), the parties
and category a session names, and the locks that make decisions on a session take turns.
(Each leg is logged by the statements of ``exchanges.log_statements``; the ledger moves through
its door.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import BigInteger, any_, cast, select
from sqlalchemy.dialects.postgresql import ARRAY

from timebank.db import tables
from timebank.db.compose import arg, compiled_sql
from timebank.db.statements import Connection, fetch, fetch_one
from timebank.exchanges.repository import EXCHANGES, EXCHANGES_ROW, party
from timebank.exchanges.schemas import ExchangeRecord, GroupRecord, Party, Side

_g = tables.exchange_groups.alias("g")
_gc = tables.categories.alias("c")
_group = (
    select(
        *(
            _gc.c.slug.label("category") if f.name == "category" else _g.c[f.name]
            for f in fields(GroupRecord)
        )
    )
    .select_from(_g.join(_gc, _gc.c.id == _g.c.category_id))
    .where(_g.c.id == arg(1), _g.c.timebank_id == arg(2))
)
_GROUP = compiled_sql(_group)
_GROUP_LOCKED = compiled_sql(_group.with_for_update(of=_g))
_INSERT_GROUP = (
    "INSERT INTO exchange_groups (timebank_id, host_id, host_side, legs, minutes, service_date,"
    " category_id, description, logged_by_user_id, on_behalf)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id"
)
_JOIN_LEGS = (
    "UPDATE exchanges SET group_id = $1 WHERE timebank_id = $2 AND id = ANY($3::bigint[])"
    " AND group_id IS NULL"
)
_CATEGORY = "SELECT id, name FROM categories WHERE timebank_id = $1 AND slug = $2"
# A session's own id, or the session of the leg of that id (ids are shared, so at most one).
_GROUP_OF = (
    "SELECT id AS group_id FROM exchange_groups WHERE id = $1 AND timebank_id = $2"
    " UNION ALL SELECT group_id FROM exchanges WHERE id = $1 AND timebank_id = $2"
)

_e = EXCHANGES_ROW
_legs = EXCHANGES.where(_e.c.group_id == arg(1), _e.c.timebank_id == arg(2)).order_by(_e.c.id)
_LEGS = compiled_sql(_legs)
_LEGS_LOCKED = compiled_sql(_legs.with_for_update(of=_e))

_PARTIES = compiled_sql(party(any_(cast(arg(1), ARRAY(BigInteger))), arg(2)))


async def get_group(
    conn: Connection, timebank_id: int, group_id: int, *, lock: bool = False
) -> GroupRecord | None:
    """A group session of this timebank; with ``lock``, its row stays locked until the
    transaction ends: every decision on the session or one of its legs takes it first."""
    row = await fetch_one(conn, _GROUP_LOCKED if lock else _GROUP, group_id, timebank_id)
    return GroupRecord(**row) if row is not None else None


async def legs_of(
    conn: Connection, timebank_id: int, group_id: int, *, lock: bool = False
) -> list[ExchangeRecord]:
    """A session's legs in ascending id order (locked with ``lock``)."""
    rows = await fetch(conn, _LEGS_LOCKED if lock else _LEGS, group_id, timebank_id)
    return [ExchangeRecord(**row) for row in rows]


async def group_of(conn: Connection, timebank_id: int, exchange_id: int) -> int | None:
    """The session exchange ``exchange_id`` is a leg of (None: not a leg, or no such
    exchange); its own id when it names a session."""
    row = await fetch_one(conn, _GROUP_OF, exchange_id, timebank_id)
    return row["group_id"] if row is not None else None


async def parties(
    conn: Connection, timebank_id: int, participant_ids: Sequence[int]
) -> dict[int, Party]:
    """Those of ``participant_ids`` in this timebank, as parties to an exchange."""
    rows = await fetch(conn, _PARTIES, list(participant_ids), timebank_id)
    return {row["id"]: Party(**row) for row in rows}


async def category(conn: Connection, timebank_id: int, slug: str) -> tuple[int, str] | None:
    """The category of slug ``slug`` as (id, name)."""
    row = await fetch_one(conn, _CATEGORY, timebank_id, slug)
    return (row["id"], row["name"]) if row is not None else None


async def insert_group(
    conn: Connection,
    *,
    timebank_id: int,
    host_id: int,
    host_side: Side,
    legs: int,
    minutes: int,
    service_date: Any,
    category_id: int,
    description: str,
    logged_by_user_id: int,
    on_behalf: bool,
) -> int:
    """A session's row (its legs join it before commit, or PostgreSQL refuses both)."""
    row = await fetch_one(
        conn,
        _INSERT_GROUP,
        timebank_id,
        host_id,
        host_side,
        legs,
        minutes,
        service_date,
        category_id,
        description,
        logged_by_user_id,
        on_behalf,
    )
    assert row is not None
    return int(row["id"])


async def join_legs(
    conn: Connection, timebank_id: int, group_id: int, exchange_ids: Sequence[int]
) -> None:
    """Make the exchanges just logged the legs of session ``group_id``."""
    await fetch(conn, _JOIN_LEGS, group_id, timebank_id, list(exchange_ids))
