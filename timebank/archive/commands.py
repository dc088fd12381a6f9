"""What ``timebank export`` and ``timebank import archive`` do, for the CLI to call."""

from __future__ import annotations

from pathlib import Path

from timebank.archive.service import Archives
from timebank.db.engine import create_engine
from timebank.errors import ValidationFailed
from timebank.settings import Settings


async def export_command(url: str, settings: Settings, slug: str, out: Path) -> str:
    """Write the archive of ``slug`` to ``out``; say what was written."""
    engine = create_engine(url, settings)
    try:
        size = await Archives(engine).export_to(slug, out)
    except OSError as error:
        raise ValidationFailed(f"cannot write {out}: {error.strerror or error}") from error
    finally:
        await engine.dispose()
    return f"timebank {slug} exported to {out} ({size:,} bytes)"


async def import_archive_command(url: str, settings: Settings, archive: Path) -> str:
    """Restore ``archive`` into the (empty) instance at ``url``; say what was restored and
    what to do next."""
    engine = create_engine(url, settings)
    try:
        restored = await Archives(engine).restore(archive)
    finally:
        await engine.dispose()
    counts = ", ".join(
        f"{rows} {name.removesuffix('.csv')}" for name, rows in restored.rows.items()
    )
    return (
        f"timebank {restored.slug} restored: {counts}.\n"
        "Nobody can sign in to it yet: users are not in an archive. Make a site admin "
        "(timebank admin create), then invite the coordinators and members again."
    )
