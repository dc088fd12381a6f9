"""A restore refuses, naming what is wrong and writing nothing, an archive that was changed or
damaged (a file whose hash, rows or columns do not match its manifest; a file missing; a
ledger that does not add up; a reference to no row; a row of another timebank; not a zip at
all), and an instance that is not empty."""

from __future__ import annotations

import hashlib
import json
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tests.archive.conftest import FreshDatabase
from tests.conftest import unique_slug
from tests.test_cli import env_with, run_cli
from timebank.archive import Archives
from timebank.db.engine import sqlalchemy_url
from timebank.demo import load_demo
from timebank.errors import Conflict, Forbidden, ValidationFailed
from timebank.participants.service import Participants
from timebank.settings import Settings

Edit = Callable[[dict[str, bytes]], None]


def _rewrite(source: Path, target: Path, edit: Edit, *, fix_manifest: bool) -> None:
    """A copy of the archive ``source`` with its files changed by ``edit`` (and, with
    ``fix_manifest``, a manifest that agrees with the changed files' hashes)."""
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    edit(files)
    if fix_manifest:
        manifest = json.loads(files["manifest.json"])
        for entry in manifest["files"]:
            if entry["name"] in files:
                entry["sha256"] = hashlib.sha256(files[entry["name"]]).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def _replace_cell(file: str, column: str, value: str, row: int = 1) -> Edit:
    """Set ``column`` of data row ``row`` of ``file`` to ``value``."""

    def edit(files: dict[str, bytes]) -> None:
        lines = files[file].decode().split("\r\n")
        header = lines[0].split(",")
        cells = lines[row].split(",")
        cells[header.index(column)] = value
        lines[row] = ",".join(cells)
        files[file] = "\r\n".join(lines).encode()

    return edit


def _swap_cells(file: str, first: str, second: str, row: int = 1) -> Edit:
    """Swap two columns' cells in data row ``row`` of ``file``."""

    def edit(files: dict[str, bytes]) -> None:
        lines = files[file].decode().split("\r\n")
        header = lines[0].split(",")
        cells = lines[row].split(",")
        a, b = header.index(first), header.index(second)
        cells[a], cells[b] = cells[b], cells[a]
        lines[row] = ",".join(cells)
        files[file] = "\r\n".join(lines).encode()

    return edit


def _change_a_byte(files: dict[str, bytes]) -> None:
    files["exchanges.csv"] = files["exchanges.csv"].replace(b",approved,", b",rejected,", 1)


def _drop_participants(files: dict[str, bytes]) -> None:
    del files["participants.csv"]


def _claim_a_row_more(files: dict[str, bytes]) -> None:
    manifest = json.loads(files["manifest.json"])
    for entry in manifest["files"]:
        if entry["name"] == "categories.csv":
            entry["rows"] += 1
    files["manifest.json"] = json.dumps(manifest).encode()


def _lose_a_column(files: dict[str, bytes]) -> None:
    lines = files["categories.csv"].decode().split("\r\n")
    files["categories.csv"] = "\r\n".join(line.rsplit(",", 1)[0] for line in lines).encode()


# (what is done to the archive, whether the manifest is made to agree, what the refusal names)
TAMPERINGS: list[tuple[str, Edit, bool, str]] = [
    ("a byte changed", _change_a_byte, False, "exchanges.csv does not match its SHA-256"),
    ("a file missing", _drop_participants, False, "participants.csv is missing"),
    ("a row fewer than said", _claim_a_row_more, False, "categories.csv holds"),
    ("a column lost", _lose_a_column, True, "categories.csv does not have the columns"),
    (
        "a balance changed",
        _replace_cell("postings.csv", "balance_after", "999999"),
        True,
        "the archive's ledger does not add up",
    ),
    (
        "an exchange's minutes changed",
        _replace_cell("exchanges.csv", "minutes", "719"),
        True,
        "[exchanges] timebank",
    ),
    (
        "an exchange's giver and receiver swapped",
        _swap_cells("exchanges.csv", "giver_id", "receiver_id"),
        True,
        "[exchanges] timebank",
    ),
    (
        "a category that is not there",
        _replace_cell("exchanges.csv", "category_id", "987654321"),
        True,
        "exchanges_category_fkey",
    ),
    (
        "a row of another timebank",
        _replace_cell("participants.csv", "timebank_id", "987654321"),
        True,
        "participants.csv, line 2: a row of another timebank",
    ),
    (
        "a kind of participant that is not one",
        _replace_cell("participants.csv", "kind", "alien"),
        True,
        'violates check constraint "participants_kind_valid"',
    ),
    (
        "a cell that is not a number",
        _replace_cell("accounts.csv", "balance", "lots"),
        True,
        "accounts.csv, line 2",
    ),
]


@pytest.fixture
async def demo_archive(database_url: str, engine, tmp_path: Path) -> tuple[str, Path]:
    slug = unique_slug("demo")
    await load_demo(database_url, Settings(report_settle_seconds=0), slug=slug, seed=7)
    archive = tmp_path / "demo.zip"
    await Archives(engine).export_to(slug, archive)
    return slug, archive


async def _timebanks(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.exec_driver_sql("SELECT count(*) FROM timebanks")).scalar_one()


async def test_a_changed_or_damaged_archive_is_refused_naming_what_is_wrong(
    demo_archive: tuple[str, Path], fresh_database: FreshDatabase, tmp_path: Path
):
    _, archive = demo_archive
    _, engine = await fresh_database()
    archives = Archives(engine)
    for what, edit, fix_manifest, named in TAMPERINGS:
        tampered = tmp_path / "tampered.zip"
        _rewrite(archive, tampered, edit, fix_manifest=fix_manifest)
        with pytest.raises(ValidationFailed) as refused:
            await archives.restore(tampered)
        assert named in refused.value.detail, (what, refused.value.detail)
        assert await _timebanks(engine) == 0, f"{what}: the refused restore wrote rows"

    not_a_zip = tmp_path / "notes.zip"
    not_a_zip.write_text("=cmd|' /C calc'!A0")
    with pytest.raises(ValidationFailed, match="not a zip archive"):
        await archives.restore(not_a_zip)

    # The untouched archive restores into the very database that refused the others.
    restored = await archives.restore(archive)
    assert restored.rows["exchanges.csv"] >= 250


async def test_the_command_names_the_tampered_file(
    demo_archive: tuple[str, Path], fresh_database: FreshDatabase, tmp_path: Path
):
    _, archive = demo_archive
    url, engine = await fresh_database()
    tampered = tmp_path / "tampered.zip"
    _rewrite(archive, tampered, _change_a_byte, fix_manifest=False)
    result = run_cli("import", "archive", str(tampered), env=env_with(TIMEBANK_DATABASE_URL=url))
    assert result.returncode == 1
    assert "exchanges.csv does not match its SHA-256" in result.stderr
    assert await _timebanks(engine) == 0


async def test_a_restore_into_an_instance_that_is_not_empty_is_refused(
    demo_archive: tuple[str, Path], engine, fresh_database: FreshDatabase
):
    slug, archive = demo_archive
    # The instance it came from: the timebank is there already.
    with pytest.raises(Conflict, match=f"timebank '{slug}' already exists here"):
        await Archives(engine).restore(archive)

    # An instance with another timebank in it.
    _, other = await fresh_database()
    await Participants(other).create_timebank("hillside", "Hillside Timebank")
    with pytest.raises(Conflict, match="already holds 1 timebank"):
        await Archives(other).restore(archive)
    assert await _timebanks(other) == 1

    # Restored once, not twice.
    _, empty = await fresh_database()
    await Archives(empty).restore(archive)
    with pytest.raises(Conflict, match="already exists here"):
        await Archives(empty).restore(archive)
    assert await _timebanks(empty) == 1


async def test_a_database_role_that_may_not_turn_triggers_off_is_told_so(
    demo_archive: tuple[str, Path], fresh_database: FreshDatabase
):
    _, archive = demo_archive
    url, engine = await fresh_database()
    role = f"restorer_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        await conn.exec_driver_sql(f"GRANT SELECT, UPDATE ON timebanks TO {role}")
    as_role = create_async_engine(sqlalchemy_url(url).replace("postgres@", f"{role}@", 1))
    try:
        with pytest.raises(Forbidden, match="session_replication_role"):
            await Archives(as_role).restore(archive)
    finally:
        await as_role.dispose()
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f"REVOKE ALL ON timebanks FROM {role}")
            await conn.exec_driver_sql(f"DROP ROLE {role}")
    assert await _timebanks(engine) == 0
