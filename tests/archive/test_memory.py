"""Exporting holds a chunk of rows at a time, not the timebank: the peak of memory the export
allocates stays under a bound set by the chunk size, while the files it writes are many times
that bound."""

from __future__ import annotations

import json
import tracemalloc
import zipfile
from pathlib import Path

from tests.archive.conftest import FreshDatabase
from timebank.archive import Archives
from timebank.bench.reports_build import SLUG, Progress, build_timebank
from timebank.db.engine import asyncpg_dsn
from timebank.participants.service import Participants

CHUNK_ROWS = 100
# A fixed part (the deflate compressor's tables, the zip writer, the connection's buffers),
# and a part proportional to the chunk (about 2.5 KB a row, generously): not to the timebank.
BOUND_BYTES = 1_000_000 + 2_500 * CHUNK_ROWS
EXCHANGES = 16_000


async def test_export_memory_stays_flat_however_many_exchanges(
    fresh_database: FreshDatabase, tmp_path: Path
):
    url, engine = await fresh_database()
    await build_timebank(
        asyncpg_dsn(url),
        Participants(engine),
        participants=300,
        exchanges=EXCHANGES,
        years=1,
        progress=Progress(),
    )
    archives = Archives(engine)
    out = tmp_path / "big.zip"
    await archives.export_to(SLUG, out, chunk_rows=CHUNK_ROWS)  # warm: caches, pool, imports

    tracemalloc.start()
    try:
        await archives.export_to(SLUG, out, chunk_rows=CHUNK_ROWS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    files = {entry["name"]: entry for entry in manifest["files"]}
    written = sum(entry["bytes"] for entry in files.values())
    print(f"peak {peak:,} bytes while writing {written:,} bytes of CSV (bound {BOUND_BYTES:,})")
    assert files["exchanges.csv"]["rows"] == EXCHANGES
    assert written > 4 * BOUND_BYTES  # holding the rows would not fit under the bound
    assert peak < BOUND_BYTES
