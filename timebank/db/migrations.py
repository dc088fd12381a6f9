"""Running the Alembic migrations kept in ``schema/``.

The schema is SQL: ``schema/sql/tables/`` holds the tables (with their constraints and
indexes) by area, and ``schema/sql/functions/NAME.sql`` the one current definition of each
database function (a trigger function with its triggers). Revisions in ``schema/versions/``
run those files; ``0001_baseline`` creates everything.

From here on, a revision that changes a function replaces its file and runs it with
``run_function(NAME)``; a table changes by an ``ALTER TABLE`` of the revision's own.
``schema/README.md`` gives the rules.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import timebank

BASELINE = "0001_baseline"
# The revisions 0001_baseline replaced. A database at the last of them has the baseline's
# schema exactly; one at an earlier one would need the revisions that are gone.
SQUASHED = (
    "0001_ledger_core",
    "0002_people_and_exchanges",
    "0003_report_facts",
    "0004_report_rollups",
    "0005_report_pairs",
    "0006_report_months",
    "0007_approved_as_logged",
    "0008_log_in_one_statement",
    "0009_report_queue",
    "0010_fewer_nested_calls",
    "0011_postings_checked_by_leg",
    "0012_invitations_and_roles",
    "0013_corrections_and_limits",
    "0014_sign_in",
    "0015_published_cells",
)

_log = logging.getLogger(__name__)


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


class SchemaRefused(Exception):
    """The database is at a revision this version of the service cannot migrate from."""


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (blocking; from async code use ``upgrade_async``).
    Raises ``SchemaRefused`` for a database this version cannot migrate, e.g. one at a
    revision it does not know (written by a newer version)."""
    try:
        command.upgrade(alembic_config(database_url), revision)
    except CommandError as error:
        raise SchemaRefused(f"cannot migrate this database: {error}") from error


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, database_url, revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


def adopt_squashed(connection: Connection) -> None:
    """Before migrating: stamp a database at the last squashed revision as ``BASELINE`` (its
    schema is the baseline's); refuse one at an earlier squashed revision. Runs inside
    Alembic's environment, on its synchronous connection (statements sent as written)."""
    if connection.exec_driver_sql("SELECT to_regclass('alembic_version')").scalar() is None:
        return
    revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    if revision == SQUASHED[-1]:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = $1", (BASELINE,))
        _log.warning("database at %s (same schema as the baseline): stamped %s", revision, BASELINE)
    elif revision in SQUASHED:
        raise SchemaRefused(
            f"the database is at revision {revision}, older than {SQUASHED[-1]}; this version "
            f"of the service migrates only from {SQUASHED[-1]} (the schema of {BASELINE}) or "
            "later. Restore a backup taken at that revision, or start from an empty database."
        )


def _run_sql(path: Path) -> None:
    from alembic import op
    from sqlalchemy.util import await_only

    sql = path.read_text(encoding="utf-8")
    # asyncpg runs a whole script (PL/pgSQL bodies and all) in one simple-protocol call.
    driver_connection = op.get_bind().connection.driver_connection
    assert driver_connection is not None, "migrations run on an open asyncpg connection"
    await_only(driver_connection.execute(sql))


def run_sql_file(name: str) -> None:
    """Run ``schema/sql/<name>`` (e.g. ``tables/ledger.sql``) inside the current migration's
    transaction."""
    _run_sql(schema_dir() / "sql" / name)


def run_function(name: str) -> None:
    """(Re)create the database function ``name`` (and its triggers) from its one file,
    ``schema/sql/functions/<name>.sql``, inside the current migration's transaction."""
    _run_sql(schema_dir() / "sql" / "functions" / f"{name}.sql")
