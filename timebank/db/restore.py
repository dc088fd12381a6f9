"""Plumbing for restoring rows as they were (``timebank import archive``): copy rows in with their
own ids, find references that point nowhere, and move identity sequences past what was copied.

Restoring writes rows that the triggers would refuse as new writes (accounts that already hold
their balance, exchanges approved long ago), so the restore copies them with the triggers off
for its own transaction (``triggers_off``) and then runs the checks the triggers stand for
before committing: ``dangling_references`` for the foreign keys, the ledger's audit for the
rest. Only a role allowed to set ``session_replication_role`` (a superuser, as on the embedded
server) can restore."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db.transactions import sqlstate_of
from timebank.errors import Forbidden

_INSUFFICIENT_PRIVILEGE = "42501"


async def driver(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under ``conn`` (same transaction), for COPY."""
    raw = await conn.get_raw_connection()
    driver_connection: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    return driver_connection


@asynccontextmanager
async def triggers_off(conn: AsyncConnection) -> AsyncIterator[None]:
    """Within the caller's transaction: user triggers and foreign-key triggers do not fire
    until the block ends (constraints other than foreign keys still hold). The caller checks
    what they would have checked before it commits."""
    try:
        await conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    except DBAPIError as error:
        if sqlstate_of(error) != _INSUFFICIENT_PRIVILEGE:
            raise
        raise Forbidden(
            "restoring needs a database role that may set session_replication_role (a "
            "superuser, as on the embedded server); this one may not"
        ) from error
    yield
    # Not in a finally: after a refusal the transaction is aborted and only rolls back.
    await conn.exec_driver_sql("SET LOCAL session_replication_role = origin")


async def copy_rows(
    conn: AsyncConnection, table: str, columns: Sequence[str], records: Iterable[tuple[Any, ...]]
) -> None:
    """COPY ``records`` (tuples in the order of ``columns``) into ``table``, ids included."""
    await (await driver(conn)).copy_records_to_table(table, records=records, columns=columns)


# Every foreign key among the given tables whose referencing columns are all set and name no
# row: one line per constraint broken, with how many rows break it. Built from the catalog so
# that it follows the schema; each check is one NOT EXISTS over the referencing table.
_DANGLING = """
DO $$
DECLARE
    fk record;
    broken bigint;
    found text := '';
BEGIN
    FOR fk IN
        SELECT c.conname, c.conrelid::regclass AS child, c.confrelid::regclass AS parent,
               (SELECT string_agg(format('c.%I IS NOT NULL', a.attname), ' AND ')
                  FROM unnest(c.conkey) k JOIN pg_attribute a
                    ON a.attrelid = c.conrelid AND a.attnum = k) AS present,
               (SELECT string_agg(format('p.%I = c.%I', pa.attname, ca.attname), ' AND ')
                  FROM unnest(c.conkey, c.confkey) AS k(child_col, parent_col)
                  JOIN pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.child_col
                  JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.parent_col)
                  AS matches
          FROM pg_constraint c
         WHERE c.contype = 'f'
           AND c.conrelid::regclass::text = ANY (string_to_array('%TABLES%', ','))
         ORDER BY c.conname
    LOOP
        EXECUTE format('SELECT count(*) FROM %s c WHERE %s AND NOT EXISTS '
                       '(SELECT FROM %s p WHERE %s)', fk.child, fk.present, fk.parent, fk.matches)
           INTO broken;
        IF broken > 0 THEN
            found := found || format('%s (%s rows); ', fk.conname, broken);
        END IF;
    END LOOP;
    IF found <> '' THEN
        RAISE EXCEPTION 'references that name no row: %', found USING ERRCODE = 'TBVA0';
    END IF;
END $$
"""


async def check_references(conn: AsyncConnection, tables: Sequence[str]) -> None:
    """Refuse (ValidationFailed through the transaction's translation, naming each constraint)
    if any foreign key of ``tables`` names a row that does not exist."""
    names = ",".join(tables)
    if not all(name.replace("_", "").isalnum() for name in tables):
        raise ValueError("table names are plain identifiers")
    # A DO block takes no parameters: the table names (plain identifiers, checked above) are
    # spliced in as one literal list.
    await conn.exec_driver_sql(_DANGLING.replace("%TABLES%", names))


_BUMP = """
SELECT setval(pg_get_serial_sequence($1, 'id'),
              greatest((SELECT max(id) FROM {table}),
                       pg_sequence_last_value(pg_get_serial_sequence($1, 'id')::regclass), 1))
"""


async def move_sequence_past(
    conn: AsyncConnection, table: str, *, owner: str | None = None
) -> None:
    """Set the identity sequence of ``table``'s ``id`` (or of ``owner``'s, for a table that
    takes its ids from another's sequence) past the largest id in ``table``, so that the next
    row written the ordinary way takes a new id."""
    if not table.replace("_", "").isalnum():
        raise ValueError("table names are plain identifiers")
    await conn.exec_driver_sql(_BUMP.format(table=table), (owner or table,))
