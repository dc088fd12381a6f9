"""The body of ``timebank import people|history FILE --timebank SLUG``: a progress bar on the
terminal, a summary at the end, every bad row listed, and an exit status that says whether
the file was imported."""

from __future__ import annotations

import sys

import click

from timebank.db.engine import create_engine
from timebank.imports.report import FileRefused, ImportKind, ImportReport
from timebank.imports.service import Imports
from timebank.settings import Settings

# An import's statements post tens of thousands of exchanges each; the service's per
# statement timeout is for requests.
COMMAND_TIMEOUT_SECONDS = 3600.0


class _Bar:
    """One line on standard error, rewritten as each stage moves on."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = width if total == 0 else width * done // total
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        click.echo(f"\r{stage:>16} [{bar}] {done:,}/{total:,}", err=True, nl=False)
        if end:
            click.echo("", err=True)


def _print_problems(refused: FileRefused) -> None:
    for problem in refused.problems:
        column = f", column {problem.column}" if problem.column else ""
        click.echo(f"line {problem.line}{column}: {problem.reason}", err=True)


async def run_import(
    url: str,
    settings: Settings,
    kind: str,
    data: bytes,
    slug: str,
    *,
    dry: bool,
    good: bool,
) -> ImportReport:
    """Import ``data`` (``kind``: people or history) into timebank ``slug``, a dry run with
    ``dry``, the good rows only with ``good``; the report, or ClickException for a file that
    was refused (its bad rows printed first)."""
    if kind not in ("people", "history"):
        raise click.ClickException("import people or history")
    chosen: ImportKind = "people" if kind == "people" else "history"
    quiet_settings = settings.model_copy(update={"db_command_timeout": COMMAND_TIMEOUT_SECONDS})
    engine = create_engine(url, quiet_settings)
    try:
        imports = Imports(engine)
        report = await imports.run(
            slug,
            chosen,
            data,
            dry_run=dry,
            good_rows_only=good,
            progress=_Bar(sys.stderr.isatty()),
        )
    except FileRefused as refused:
        _print_problems(refused)
        raise click.ClickException(refused.detail) from refused
    finally:
        await engine.dispose()
    for problem in sorted(report.problems):
        column = f", column {problem.column}" if problem.column else ""
        click.echo(f"skipped line {problem.line}{column}: {problem.reason}", err=True)
    if dry:
        verdict = "dry run, nothing written"
    else:
        verdict = "imported" if report.written else "nothing new to import"
    click.echo(f"{verdict}: {report.summary()}")
    return report
