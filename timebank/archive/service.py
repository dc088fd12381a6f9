"""Export and restore of a whole timebank: who may export, the archive as a stream or a file,
and the restore as one transaction followed by the report aggregates being built."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.archive.reader import Restored, open_archive, restore_rows
from timebank.archive.writer import CHUNK_ROWS, write_archive
from timebank.auth.schemas import TimebankAccess
from timebank.db.transactions import run_in_transaction
from timebank.errors import Forbidden
from timebank.reports.queue import catch_up


class Archives:
    """Archives of timebanks on one database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @staticmethod
    def may_export(access: TimebankAccess) -> None:
        """Refuse (403) anyone but the timebank's coordinators and site admins: an archive
        holds everyone's contact details and every exchange."""
        if not access.can_manage:
            raise Forbidden("only a coordinator of this timebank (or an admin) can export it")

    async def export(self, slug: str, *, chunk_rows: int = CHUNK_ROWS) -> AsyncIterator[bytes]:
        """The archive of ``slug`` as zip bytes, read on a connection of its own (a response
        streams it after the request's own work is done)."""
        async with self.engine.connect() as conn:
            async for piece in write_archive(conn, slug, chunk_rows=chunk_rows):
                yield piece

    async def export_to(self, slug: str, out: Path, *, chunk_rows: int = CHUNK_ROWS) -> int:
        """Write the archive of ``slug`` to ``out`` (whole or not at all: it is written beside
        it and renamed once complete); return its size in bytes."""
        partial = out.with_name(f".{out.name}.partial")
        size = 0
        try:
            with partial.open("wb") as file:
                async for piece in self.export(slug, chunk_rows=chunk_rows):
                    file.write(piece)
                    size += len(piece)
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
        return size

    async def restore(self, archive_path: Path) -> Restored:
        """Restore the archive at ``archive_path`` into this (empty) instance, in one
        transaction, then build the timebank's report aggregates. Refusals (ValidationFailed,
        Conflict) name what is wrong and write nothing."""
        with open_archive(archive_path) as archive:

            async def work(conn: AsyncConnection) -> Restored:
                return await restore_rows(conn, archive)

            restored = await run_in_transaction(self.engine, work, max_retries=0)
        await catch_up(self.engine)
        return restored
