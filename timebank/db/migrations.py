"""Running the Alembic migrations kept in ``schema/``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

import timebank


def schema_dir() -> Path:
    """``schema/`` beside the package in a checkout, or inside it when installed as a wheel."""
    package_dir = Path(timebank.__file__).parent
    for candidate in (package_dir / "_schema", package_dir.parent / "schema"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("the schema/ folder with the migrations was not found")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(schema_dir()))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (blocking; from async code use ``upgrade_async``)."""
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, database_url, revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


def run_sql_file(name: str) -> None:
    """Run ``schema/sql/<name>`` inside the current migration's transaction."""
    from alembic import op
    from sqlalchemy.util import await_only

    sql = (schema_dir() / "sql" / name).read_text(encoding="utf-8")
    # asyncpg runs a whole script (PL/pgSQL bodies and all) in one simple-protocol call.
    driver_connection = op.get_bind().connection.driver_connection
    assert driver_connection is not None, "migrations run on an open asyncpg connection"
    await_only(driver_connection.execute(sql))
