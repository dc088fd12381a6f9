"""The import API's request and answer: a CSV file uploaded as multipart form data, and the
check report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from litestar.datastructures import UploadFile
from pydantic import BaseModel, Field

from timebank.imports.report import ImportReport

# The largest file the API and the upload page take (about 200,000 exchanges); larger
# histories go through `timebank import`, which reads any size.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024


@dataclass
class ImportUpload:
    """A CSV file (``file``), what it holds (``kind``), and how to import it."""

    file: UploadFile
    kind: Literal["people", "history"]
    dry_run: bool = False
    good_rows_only: bool = False


class RowProblemPublic(BaseModel):
    line: int = Field(description="the file's line (the header is line 1)")
    column: str = Field(description="the column's header as the file wrote it; empty for a row")
    reason: str


class ImportReportPublic(BaseModel):
    """What the check found and what the import did."""

    kind: Literal["people", "history"]
    format: str = Field(description="timebank (our columns) or timeoverflow")
    rows: int
    new: int = Field(description="rows to import, or imported")
    already_there: int = Field(description="rows found from an earlier import: nothing to do")
    opening_balances: int
    external_ids_recorded: int = Field(
        description="people found by email who had no external id: the file's, recorded"
    )
    problems: list[RowProblemPublic]
    dry_run: bool
    good_rows_only: bool
    written: bool

    @classmethod
    def of(cls, report: ImportReport) -> ImportReportPublic:
        return cls.model_validate(report.as_dict())
