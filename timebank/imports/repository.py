"""The SQL of imports: what a check reads (the timebank, its people with their accounts, its
categories, the import keys already there) and the set-based writes (people with their
accounts; historic exchanges, approved with the transfers the ledger posted for them). The
ledger's own writes go through its door (``timebank.ledger``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db.statements import execute, fetch, fetch_one
from timebank.errors import NotFound


@dataclass(frozen=True)
class Place:
    """The timebank an import writes into, with what its checks need."""

    id: int
    slug: str
    floor: int
    ceiling: int
    max_exchange_minutes: int
    pot_account_id: int


@dataclass
class Person:
    """Someone already in the timebank, with their account as it stands."""

    id: int
    name: str
    email: str | None
    external_id: str | None
    account_id: int
    balance: int
    pending_in: int
    pending_out: int
    floor: int
    ceiling: int
    closed: bool
    opening: int | None


_PLACE = """
    SELECT t.id, t.slug, t.default_floor_minutes, t.default_ceiling_minutes,
           t.max_exchange_minutes, a.id AS pot_account_id
      FROM timebanks t
      JOIN accounts a ON a.timebank_id = t.id AND a.system_role = 'community_fund'
     WHERE t.slug = $1
"""

# One import at a time per timebank: a second waits for the first to commit, then checks
# against what it wrote.
_ONE_AT_A_TIME = "SELECT pg_advisory_xact_lock(hashtextextended('timebank import', $1))"

_PEOPLE = """
    SELECT p.id, p.display_name, p.external_id, a.id AS account_id, a.balance,
           a.pending_in, a.pending_out, a.floor, a.ceiling, a.closed_at IS NOT NULL AS closed,
           o.minutes AS opening,
           -- The email the participant answers show: recorded, else their user's, else the
           -- last address they were invited at (someone who signed up has only the second).
           coalesce(p.email, u.email, (SELECT i.email FROM invitations i
                                        WHERE i.timebank_id = p.timebank_id
                                          AND i.participant_id = p.id
                                        ORDER BY i.id DESC LIMIT 1)) AS email
      FROM participants p
      JOIN accounts a ON a.participant_id = p.id
      LEFT JOIN users u ON u.id = p.user_id
      LEFT JOIN opening_balances o ON o.account_id = a.id
     WHERE p.timebank_id = $1
     ORDER BY a.id
"""
# The same, with every account locked (ascending ids, as the ledger locks them) until the
# import commits, so that the balances it checked are the ones it writes on.
_PEOPLE_LOCKED = _PEOPLE + " FOR NO KEY UPDATE OF a"

_CATEGORIES = "SELECT id, slug, name FROM categories WHERE timebank_id = $1 ORDER BY id"

_IMPORT_KEYS = "SELECT import_key FROM exchanges WHERE timebank_id = $1 AND import_key IS NOT NULL"

_INSERT_PEOPLE = """
    WITH new_people AS (
        INSERT INTO participants (timebank_id, kind, display_name, joined_on, email, phone,
                                  postal_address, contact_preference, external_id)
        SELECT $1, u.kind, u.name, coalesce(u.joined_on, current_date), u.email, u.phone,
               u.postal_address, u.contact_preference, u.external_id
          FROM unnest($2::text[], $3::text[], $4::date[], $5::text[], $6::text[], $7::text[],
                      $8::text[], $9::text[]) WITH ORDINALITY
               AS u(kind, name, joined_on, email, phone, postal_address, contact_preference,
                    external_id, ord)
         ORDER BY u.ord
        RETURNING id
    )
    INSERT INTO accounts (timebank_id, participant_id, floor, ceiling)
    SELECT $1, id, $10, $11 FROM new_people ORDER BY id
    RETURNING participant_id
"""

_RECORD_EXTERNAL_IDS = """
    UPDATE participants p SET external_id = u.external_id
      FROM unnest($2::bigint[], $3::text[]) AS u(id, external_id)
     WHERE p.timebank_id = $1 AND p.id = u.id AND p.external_id IS NULL
"""

_INSERT_EXCHANGES = """
    INSERT INTO exchanges (timebank_id, giver_id, receiver_id, minutes, service_date,
                           category_id, description, state, logged_by_user_id, logged_for,
                           on_behalf, transfer_id, import_key)
    SELECT $1, u.giver_id, u.receiver_id, u.minutes, u.service_date, u.category_id,
           u.description, 'approved', $2, 'giver', true, u.transfer_id, u.import_key
      FROM unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::date[], $7::bigint[],
                  $8::text[], $9::bigint[], $10::bytea[])
           AS u(giver_id, receiver_id, minutes, service_date, category_id, description,
                transfer_id, import_key)
"""


async def raw(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under ``conn``, in its transaction: for the bulk writes."""
    return cast(asyncpg.Connection, (await conn.get_raw_connection()).driver_connection)


async def place(conn: AsyncConnection, slug: str) -> Place:
    row = await fetch_one(conn, _PLACE, slug)
    if row is None:
        raise NotFound(f"timebank {slug!r} not found")
    return Place(
        row["id"],
        row["slug"],
        row["default_floor_minutes"],
        row["default_ceiling_minutes"],
        row["max_exchange_minutes"],
        row["pot_account_id"],
    )


async def one_import_at_a_time(conn: AsyncConnection, timebank_id: int) -> None:
    await execute(conn, _ONE_AT_A_TIME, timebank_id)


async def people(conn: AsyncConnection, timebank_id: int, *, lock: bool) -> list[Person]:
    """Everyone in the timebank with their account; with ``lock``, every account held until
    commit."""
    rows = await fetch(conn, _PEOPLE_LOCKED if lock else _PEOPLE, timebank_id)
    return [_person(row) for row in rows]


def _person(row: Mapping[str, Any]) -> Person:
    return Person(
        id=row["id"],
        name=row["display_name"],
        email=row["email"],
        external_id=row["external_id"],
        account_id=row["account_id"],
        balance=row["balance"],
        pending_in=row["pending_in"],
        pending_out=row["pending_out"],
        floor=row["floor"],
        ceiling=row["ceiling"],
        closed=row["closed"],
        opening=row["opening"],
    )


async def categories(conn: AsyncConnection, timebank_id: int) -> list[Mapping[str, Any]]:
    return list(await fetch(conn, _CATEGORIES, timebank_id))


async def import_keys(conn: AsyncConnection, timebank_id: int) -> set[bytes]:
    """The import keys of the exchanges already imported into the timebank."""
    rows = await (await raw(conn)).fetch(_IMPORT_KEYS, timebank_id)
    return {bytes(row[0]) for row in rows}


@dataclass
class NewPeople:
    """New participants, column by column in the file's order."""

    kind: list[str]
    name: list[str]
    joined_on: list[date | None]
    email: list[str | None]
    phone: list[str | None]
    postal_address: list[str | None]
    contact_preference: list[str]
    external_id: list[str | None]


async def insert_people(
    conn: AsyncConnection, place: Place, new: NewPeople, floor: int, ceiling: int
) -> list[int]:
    """Insert the participants and their accounts (limits ``floor`` and ``ceiling``); their
    ids, in the order given."""
    rows = await (await raw(conn)).fetch(
        _INSERT_PEOPLE,
        place.id,
        new.kind,
        new.name,
        new.joined_on,
        new.email,
        new.phone,
        new.postal_address,
        new.contact_preference,
        new.external_id,
        floor,
        ceiling,
    )
    return [row["participant_id"] for row in rows]


async def record_external_ids(
    conn: AsyncConnection, timebank_id: int, external_ids: dict[int, str]
) -> None:
    """Give people who had no external id the one the file names them by."""
    ids = sorted(external_ids)
    await execute(conn, _RECORD_EXTERNAL_IDS, timebank_id, ids, [external_ids[i] for i in ids])


@dataclass
class HistoricExchanges:
    """Approved exchanges to insert, column by column, each with its posted transfer."""

    giver_id: list[int]
    receiver_id: list[int]
    minutes: list[int]
    service_date: list[date]
    category_id: list[int]
    description: list[str]
    transfer_id: Sequence[int]
    import_key: list[bytes]


async def insert_exchanges(
    conn: asyncpg.Connection, timebank_id: int, user_id: int | None, rows: HistoricExchanges
) -> None:
    """Insert the exchanges as approved, each on the transfer posted for it in this
    transaction (PostgreSQL checks that it is theirs: receiver to giver, of their minutes)."""
    await conn.execute(
        _INSERT_EXCHANGES,
        timebank_id,
        user_id,
        rows.giver_id,
        rows.receiver_id,
        rows.minutes,
        rows.service_date,
        rows.category_id,
        rows.description,
        rows.transfer_id,
        rows.import_key,
    )
