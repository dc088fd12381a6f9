"""Writing an archive as a stream of zip bytes: each table's rows read from a server-side
cursor a chunk at a time, written as CSV into the zip entry by entry and hashed as they go, the
manifest (counts and SHA-256 of each file) last. What is held in memory at any moment is one
chunk of rows and what the compressor keeps, however large the timebank."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.archive.contents import (
    ARCHIVED,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    ArchivedTable,
    cell,
)
from timebank.db.statements import fetch_value, stream
from timebank.errors import NotFound

# Rows fetched from the cursor, and written to the zip, at a time.
CHUNK_ROWS = 500


class _Sink(io.RawIOBase):
    """Where the zip writes: bytes kept only until the stream hands them on. Not seekable, so
    zipfile writes each entry's sizes after its data (a data descriptor)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        taken = b"".join(self._chunks)
        self._chunks.clear()
        return taken


class _Entry:
    """One CSV file being written into the zip: counts its rows and hashes its bytes."""

    def __init__(self, archive: zipfile.ZipFile, name: str) -> None:
        self.name = name
        self.rows = 0
        self.size = 0
        self.sha256 = hashlib.sha256()
        self._out = archive.open(_entry_info(name), "w", force_zip64=True)
        self._text = io.StringIO()
        self._csv = csv.writer(self._text, lineterminator="\r\n")

    def header(self, columns: tuple[str, ...]) -> None:
        self._csv.writerow(columns)

    def row(self, values: list[str]) -> None:
        self._csv.writerow(values)
        self.rows += 1

    def flush(self) -> None:
        data = self._text.getvalue().encode()
        self._text.seek(0)
        self._text.truncate()
        self.sha256.update(data)
        self.size += len(data)
        self._out.write(data)

    def close(self) -> dict[str, Any]:
        self.flush()
        self._out.close()
        return {"rows": self.rows, "bytes": self.size, "sha256": self.sha256.hexdigest()}


def _entry_info(name: str) -> zipfile.ZipInfo:
    """A compressed entry stamped with the time it is written (UTC)."""
    info = zipfile.ZipInfo(name, date_time=datetime.now(UTC).timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


async def timebank_id_of(conn: AsyncConnection, slug: str) -> int:
    """The id of the timebank ``slug`` (NotFound if there is none)."""
    found = await fetch_value(conn, "SELECT id FROM timebanks WHERE slug = $1", slug)
    if found is None:
        raise NotFound(f"timebank {slug!r} not found")
    return int(found)


async def write_archive(
    conn: AsyncConnection, slug: str, *, chunk_rows: int = CHUNK_ROWS
) -> AsyncIterator[bytes]:
    """The archive of timebank ``slug`` as zip bytes, piece by piece. ``conn`` must not have
    begun a transaction: the archive is read in one REPEATABLE READ snapshot of its own, so its
    files agree with each other however busy the timebank is."""
    await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    timebank_id = await timebank_id_of(conn, slug)
    sink = _Sink()
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for archived in ARCHIVED:
            entry = _Entry(archive, archived.file)
            async for piece in _write_table(conn, archived, timebank_id, entry, chunk_rows, sink):
                yield piece
            files.append({"name": archived.file, "table": archived.name, **entry.close()})
            yield sink.take()
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "timebank": slug,
            "exported_at": datetime.now(UTC).isoformat(),
            "files": files,
        }
        archive.writestr(_entry_info(MANIFEST), json.dumps(manifest, indent=2))
    yield sink.take()


async def _write_table(
    conn: AsyncConnection,
    archived: ArchivedTable,
    timebank_id: int,
    entry: _Entry,
    chunk_rows: int,
    sink: _Sink,
) -> AsyncIterator[bytes]:
    entry.header(archived.columns)
    async for record in stream(conn, archived.select_sql, timebank_id, batch=chunk_rows):
        entry.row([cell(value) for value in record.values()])
        if entry.rows % chunk_rows == 0:
            entry.flush()
            yield sink.take()
