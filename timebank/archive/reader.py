"""Restoring an archive into an empty instance: the manifest and every file's SHA-256 checked
first, then every row copied in with its own id, in one transaction, in the order of
``contents.ARCHIVED``; the foreign keys and the ledger's invariants checked before it commits;
identity sequences moved past the ids copied; the report aggregates queued to be built again.

Refusals name what is wrong: the file whose hash or count does not match its manifest, a file
missing, a row of another timebank, or the instance not being empty."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.archive.contents import ARCHIVED, FORMAT, FORMAT_VERSION, MANIFEST, ArchivedTable
from timebank.db.restore import check_references, copy_rows, move_sequence_past, triggers_off
from timebank.db.statements import fetch
from timebank.errors import Conflict, ValidationFailed
from timebank.exchanges.audit import exchange_findings
from timebank.ledger.restore import copy_ledger_rows, restored_ledger_findings
from timebank.reports.queue import queue_whole_timebank

# Rows copied into the database at a time.
COPY_ROWS = 1000
_READ_BYTES = 1 << 16
# Group sessions take their ids from the exchanges' sequence (an id names one or the other).
_SEQUENCE_OWNERS = {"exchange_groups": "exchanges"}


@dataclass
class Restored:
    """What a restore wrote: the timebank and the rows of each file."""

    slug: str = ""
    timebank_id: int = 0
    rows: dict[str, int] = field(default_factory=dict)


def read_manifest(archive: zipfile.ZipFile) -> dict[str, dict[str, Any]]:
    """The manifest's entry for each file, by name, once the manifest is known to describe an
    archive of this format and every file it names is there with the hash it says."""
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except KeyError as error:
        raise ValidationFailed(f"the archive has no {MANIFEST}") from error
    except ValueError as error:
        raise ValidationFailed(f"{MANIFEST} is not JSON: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValidationFailed(f"{MANIFEST} does not describe a timebank archive")
    if manifest.get("version") != FORMAT_VERSION:
        raise ValidationFailed(
            f"the archive is of version {manifest.get('version')!r}; this service reads "
            f"version {FORMAT_VERSION}"
        )
    files: dict[str, dict[str, Any]] = {
        str(entry.get("name")): entry
        for entry in manifest.get("files", [])
        if isinstance(entry, dict)
    }
    for archived in ARCHIVED:
        entry = files.get(archived.file)
        if entry is None:
            raise ValidationFailed(f"{MANIFEST} does not list {archived.file}")
        if archived.file not in archive.namelist():
            raise ValidationFailed(f"{archived.file} is missing from the archive")
        if _sha256(archive, archived.file) != entry.get("sha256"):
            raise ValidationFailed(
                f"{archived.file} does not match its SHA-256 in {MANIFEST}: the archive was "
                "changed or damaged"
            )
    return files


def _sha256(archive: zipfile.ZipFile, name: str) -> str:
    digest = hashlib.sha256()
    with archive.open(name) as found:
        while block := found.read(_READ_BYTES):
            digest.update(block)
    return digest.hexdigest()


async def refuse_unless_empty(conn: AsyncConnection, slug: str) -> None:
    """Refuse (Conflict) when the instance holds any timebank: restored rows keep their ids,
    which only an empty instance is sure not to have taken. Locks the timebanks so that two
    restores cannot both find the instance empty."""
    await conn.exec_driver_sql("LOCK TABLE timebanks IN EXCLUSIVE MODE")
    slugs = [row["slug"] for row in await fetch(conn, "SELECT slug FROM timebanks ORDER BY id")]
    if slug in slugs:
        raise Conflict(
            f"timebank {slug!r} already exists here: an archive is restored only into an "
            "empty instance"
        )
    if slugs:
        raise Conflict(
            f"this instance already holds {len(slugs)} timebank(s): an archive is restored "
            "only into an empty instance (a fresh database)"
        )


def _timebank_of(archive: zipfile.ZipFile) -> tuple[int, str]:
    """The id and slug in the archive's timebank.csv (its one row)."""
    archived = ARCHIVED[0]
    rows = list(_records(archive, archived, expected_timebank=None))
    if len(rows) != 1:
        raise ValidationFailed(f"{archived.file} must hold exactly one timebank")
    values = dict(zip(archived.columns, rows[0], strict=True))
    return int(values["id"]), str(values["slug"])


def _records(
    archive: zipfile.ZipFile, archived: ArchivedTable, expected_timebank: int | None
) -> Iterator[tuple[Any, ...]]:
    """The rows of one file as tuples of values, in the order of ``archived.columns``; each
    row must belong to ``expected_timebank`` (when given)."""
    decoders = archived.decoders()
    scope = archived.columns.index("id" if archived is ARCHIVED[0] else "timebank_id")
    with archive.open(archived.file) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        header = next(reader, None)
        if header is None or tuple(header) != archived.columns:
            raise ValidationFailed(
                f"{archived.file} does not have the columns this service restores "
                f"({', '.join(archived.columns)})"
            )
        for line, cells in enumerate(reader, start=2):
            yield _decoded(archived, decoders, cells, line, scope, expected_timebank)


def _decoded(
    archived: ArchivedTable,
    decoders: list[Any],
    cells: list[str],
    line: int,
    scope: int,
    expected_timebank: int | None,
) -> tuple[Any, ...]:
    if len(cells) != len(decoders):
        raise ValidationFailed(
            f"{archived.file}, line {line}: {len(cells)} cells, expected {len(decoders)}"
        )
    try:
        values = tuple(decode(found) for decode, found in zip(decoders, cells, strict=True))
    except ValueError as error:
        raise ValidationFailed(f"{archived.file}, line {line}: {error}") from error
    if expected_timebank is not None and values[scope] != expected_timebank:
        raise ValidationFailed(f"{archived.file}, line {line}: a row of another timebank")
    return values


def _chunks(records: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def restore_rows(conn: AsyncConnection, archive: zipfile.ZipFile) -> Restored:
    """In the caller's transaction: check the archive, refuse unless the instance is empty,
    copy every file in, and check what was copied. Raises (so the caller rolls back) on the
    first thing wrong, naming it."""
    files = read_manifest(archive)
    restored = Restored()
    restored.timebank_id, restored.slug = _timebank_of(archive)
    await refuse_unless_empty(conn, restored.slug)
    async with triggers_off(conn):
        for archived in ARCHIVED:
            copied = 0
            for chunk in _chunks(_records(archive, archived, restored.timebank_id), COPY_ROWS):
                if archived.ledger:
                    await copy_ledger_rows(conn, archived.name, archived.columns, chunk)
                else:
                    await copy_rows(conn, archived.name, archived.columns, chunk)
                copied += len(chunk)
            if copied != files[archived.file].get("rows"):
                raise ValidationFailed(
                    f"{archived.file} holds {copied} rows, but {MANIFEST} says "
                    f"{files[archived.file].get('rows')}"
                )
            restored.rows[archived.file] = copied
    await check_references(conn, [archived.name for archived in ARCHIVED])
    findings = await restored_ledger_findings(conn, restored.slug)
    findings += await exchange_findings(conn, restored.slug)
    if findings:
        listed = "; ".join(str(finding) for finding in findings[:20])
        raise ValidationFailed(f"the archive's ledger does not add up: {listed}")
    for archived in ARCHIVED:
        if "id" in archived.columns:
            await move_sequence_past(conn, archived.name, owner=_SEQUENCE_OWNERS.get(archived.name))
    await queue_whole_timebank(conn, restored.timebank_id)
    return restored


def open_archive(path: Path | IO[bytes]) -> zipfile.ZipFile:
    """The archive at ``path`` (ValidationFailed if it is not a zip file)."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ValidationFailed(f"not a zip archive: {error}") from error
