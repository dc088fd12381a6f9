"""What checking an import file finds, and what importing it did: the report every interface
shows (the command's summary, the API's answer, the upload page)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from timebank.errors import ValidationFailed

ImportKind = Literal["people", "history"]


@dataclass(frozen=True, order=True)
class RowProblem:
    """One bad row (or the header, line 1): where it is and why it cannot be imported."""

    line: int
    column: str
    reason: str


@dataclass
class ImportReport:
    """The check of one file, and what was written. ``rows`` counts the file's records;
    ``new`` those to import (or imported), ``already_there`` those found from an earlier
    import (nothing to do), ``problems`` the bad rows. ``written`` is true once the import is
    committed; a dry run, or a file with problems imported without ``good_rows_only``, writes
    nothing."""

    kind: ImportKind
    format: str
    rows: int = 0
    new: int = 0
    already_there: int = 0
    opening_balances: int = 0
    external_ids_recorded: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    dry_run: bool = False
    good_rows_only: bool = False
    written: bool = False

    @property
    def refused(self) -> bool:
        """Nothing may be written: the file has bad rows and only good ones were not asked
        for."""
        return bool(self.problems) and not self.good_rows_only

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["problems"] = [asdict(p) for p in sorted(self.problems)]
        return body

    def summary(self) -> str:
        done = "imported" if self.written else "to import"
        parts = [f"{self.rows} rows read ({self.format} format)", f"{self.new} {done}"]
        parts.append(f"{self.already_there} already there")
        if self.kind == "people":
            parts.append(f"{self.opening_balances} opening balances")
            if self.external_ids_recorded:
                parts.append(f"{self.external_ids_recorded} external ids recorded")
        if self.problems:
            skipped = ", skipped" if self.good_rows_only else ""
            parts.append(f"{len(self.problems)} bad rows{skipped}")
        return "; ".join(parts)


def problem_entry(problem: RowProblem) -> dict[str, Any]:
    """A bad row as an entry of a problem document's ``errors``: the shape of the service's
    other validation errors, with its line and column."""
    return {
        "key": f"line {problem.line}" + (f", {problem.column}" if problem.column else ""),
        "message": problem.reason,
        "source": "file",
        "line": problem.line,
        "column": problem.column,
    }


class FileRefused(
    ValidationFailed, kind="import-refused", title="The file cannot be imported as it is"
):
    """The file cannot be imported as it is: every bad row found, each with its line, column
    and reason (``errors``); nothing was written."""

    def __init__(self, problems: list[RowProblem], report: ImportReport | None = None) -> None:
        ordered = sorted(problems)
        first = ordered[0]
        more = f" (and {len(ordered) - 1} more)" if len(ordered) > 1 else ""
        detail = f"line {first.line}: {first.reason}{more}; nothing was imported"
        extra: dict[str, Any] = {"errors": [problem_entry(p) for p in ordered]}
        if report is not None:
            extra["report"] = report.as_dict()
        super().__init__(detail, **extra)
        self.problems = ordered
        self.report = report
