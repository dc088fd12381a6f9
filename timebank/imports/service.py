"""Imports: a file checked whole, then written in one transaction or not at all.

Every interface (the command, the API, the upload page) calls ``Imports.run``. The file is
read and checked first; every bad row is reported with its line, column and reason. Nothing
is written when any row is bad, unless the caller asked for the good rows only; a dry run
writes nothing either way. The writing is one transaction, so an import cut off half-way (a
crash, a lost connection, SIGKILL) leaves nothing, and running it again does it whole; a run
after a finished one finds every row already there and writes nothing."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.auth.schemas import TimebankAccess
from timebank.db.transactions import raw_connection, run_in_transaction
from timebank.errors import Forbidden
from timebank.imports import repository
from timebank.imports.formats import (
    HISTORY_OURS,
    HISTORY_TIMEOVERFLOW,
    PEOPLE_OURS,
    PEOPLE_TIMEOVERFLOW,
)
from timebank.imports.history import check_history, write_history
from timebank.imports.people import check_people, write_people
from timebank.imports.reading import Table, read_table
from timebank.imports.report import FileRefused, ImportKind, ImportReport
from timebank.reports.queue import apply_queued

Progress = Callable[[str, int, int], None]

FORMATS = {
    "people": (PEOPLE_OURS, PEOPLE_TIMEOVERFLOW),
    "history": (HISTORY_OURS, HISTORY_TIMEOVERFLOW),
}
# Report changes applied together after a history import (each batch its own transaction).
REPORT_BATCH = 50_000


def _quiet(stage: str, done: int, total: int) -> None:
    """No progress shown."""


def require_importer(access: TimebankAccess) -> None:
    """Coordinators of the timebank and site admins import; nobody else."""
    if not access.can_manage:
        raise Forbidden("only a coordinator of this timebank (or an admin) can import")


class Imports:
    """Import people or history into a timebank from a CSV file."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def run(
        self,
        slug: str,
        kind: ImportKind,
        data: bytes,
        *,
        dry_run: bool = False,
        good_rows_only: bool = False,
        access: TimebankAccess | None = None,
        progress: Progress = _quiet,
        apply_reports: bool = True,
    ) -> ImportReport:
        """Check ``data`` (a CSV file) and, unless it is a dry run or has bad rows (and only
        good rows were not asked for), import it in one transaction. With ``access``, the
        caller must run the timebank; without, it is the operator at the command line. The
        report says what was found and done; a refused file raises FileRefused (422) with every
        bad row."""
        if access is not None:
            require_importer(access)
        user_id = access.principal.user_id if access is not None else None
        table = read_table(data, FORMATS[kind])
        progress("read", len(table.rows), len(table.rows))

        async def work(conn: AsyncConnection) -> ImportReport:
            report = ImportReport(
                kind, table.format.name, dry_run=dry_run, good_rows_only=good_rows_only
            )
            await self._import(conn, slug, kind, table, report, user_id, progress)
            return report

        report = await run_in_transaction(self.engine, work)
        if report.refused:
            raise FileRefused(report.problems, report)
        if report.written and kind == "history" and apply_reports:
            async with raw_connection(self.engine) as conn:
                await apply_queued(conn, batch=REPORT_BATCH)
            progress("reports", report.new, report.new)
        return report

    async def _import(
        self,
        conn: AsyncConnection,
        slug: str,
        kind: ImportKind,
        table: Table,
        report: ImportReport,
        user_id: int | None,
        progress: Progress,
    ) -> None:
        place = await repository.place(conn, slug)
        writing = not report.dry_run
        if writing:
            await repository.one_import_at_a_time(conn, place.id)
        people = await repository.people(conn, place.id, lock=writing)
        if kind == "people":
            plan = check_people(table, place, people, report)
            if writing and not report.refused and plan.writes():
                await write_people(conn, place, plan, user_id, progress)
                report.written = True
            return
        categories = [dict(row) for row in await repository.categories(conn, place.id)]
        keys = await repository.import_keys(conn, place.id)
        exchanges = check_history(table, place, people, categories, keys, report, progress)
        if writing and not report.refused and exchanges:
            await write_history(await repository.raw(conn), place, exchanges, user_id, progress)
            report.written = True
