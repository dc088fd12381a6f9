"""timebank/db/tables.py against the migrated database: every table and column it declares
exists there, with the same type, nullability and primary key."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.db.tables import metadata


def _columns(tables: MetaData) -> dict[tuple[str, str], tuple[str, bool, bool]]:
    dialect = postgresql.dialect()
    return {
        (table.name, column.name): (
            column.type.compile(dialect=dialect),
            column.nullable,
            column.primary_key,
        )
        for table in tables.tables.values()
        for column in table.columns
    }


# Reflection meets index options it has no dialect for; the columns are what is compared.
pytestmark = pytest.mark.filterwarnings("ignore:Can't validate argument 'dialect_options'")


async def test_every_declared_column_is_in_the_migrated_database(engine: AsyncEngine) -> None:
    live = MetaData()
    async with engine.connect() as conn:
        await conn.run_sync(lambda sync: live.reflect(sync, only=list(metadata.tables)))
    declared = _columns(metadata)
    found = _columns(live)
    assert {key: found.get(key) for key in declared} == declared


async def test_every_table_of_the_migrated_database_is_declared(engine: AsyncEngine) -> None:
    live = MetaData()
    async with engine.connect() as conn:
        await conn.run_sync(live.reflect)
    assert set(live.tables) - {"alembic_version"} == set(metadata.tables)
