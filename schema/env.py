"""Alembic environment: migrations run on one async connection, under an advisory lock so
that several processes starting at once migrate one after another. The revisions are SQL
(``schema/sql/``), so there is no target metadata to compare against."""

import asyncio

from alembic import context
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from timebank.db.engine import sqlalchemy_url
from timebank.db.migrations import adopt_squashed

MIGRATION_LOCK = 7_311_002  # any fixed number, shared by every process that migrates

config = context.config


def _database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations")
    return sqlalchemy_url(url)


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, transaction_per_migration=True)
    connection.execute(text("SELECT pg_advisory_lock(:lock)"), {"lock": MIGRATION_LOCK})
    try:
        adopt_squashed(connection)
        connection.commit()
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:lock)"), {"lock": MIGRATION_LOCK})
        connection.commit()


async def _migrate_online() -> None:
    engine = create_async_engine(_database_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_migrate_online())
