"""Reading an import file: bytes to rows of named cells, or a refusal of the whole file that
says where and why (a NUL byte, text that is not UTF-8, a header the format does not know).

A file is UTF-8, with or without a byte-order mark, comma-separated with a header row. Each
format (``Format``) names its columns; headers are matched ignoring case, spaces around them,
and the difference between spaces, underscores and hyphens. The format of a file is the one
that knows most of its headers."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from timebank.imports.report import FileRefused, RowProblem

BOM = "\ufeff"
# csv's own limit is 128 KiB per field; no cell of ours needs more than a few thousand.
MAX_CELL = 10_000


@dataclass(frozen=True)
class Format:
    """One layout of a file: its name (``timebank`` for our own), and for each header it
    knows (normalised, ``normal_header``) the field it fills, or None for a column read and
    ignored. ``required`` fields must have a column."""

    name: str
    columns: dict[str, str | None]
    required: tuple[str, ...] = ()

    def fields(self) -> set[str]:
        return {name for name in self.columns.values() if name is not None}


@dataclass
class Row:
    """One record of the file: the line it starts on (the header is line 1), and each field's
    cell (stripped; absent columns are empty), with the header it came from."""

    line: int
    cells: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        return self.cells.get(name, "")

    def column(self, name: str) -> str:
        """The header as the file wrote it, for the report (the field's name if absent)."""
        return self.headers.get(name, name)


@dataclass
class Table:
    format: Format
    rows: list[Row]
    problems: list[RowProblem]


def normal_header(header: str) -> str:
    return re.sub(r"[\s_-]+", " ", header.strip().lower())


def decode(data: bytes) -> str:
    """The file's text: UTF-8 with or without a byte-order mark; refused, with the line, when
    it holds a NUL byte or is not UTF-8."""
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data[:nul].count(b"\n") + 1
        raise FileRefused(
            [RowProblem(line, "", "a NUL byte: this is not a text file (save it as CSV)")]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise FileRefused(
            [RowProblem(line, "", "this is not UTF-8 text: save the file as CSV UTF-8")]
        ) from error
    return text.removeprefix(BOM)


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    try:
        for record in reader:
            yield line, record
            line = reader.line_num + 1
    except csv.Error as error:
        raise FileRefused(
            [RowProblem(line, "", f"the CSV cannot be read here: {error}")]
        ) from error


def read_table(data: bytes, formats: Sequence[Format]) -> Table:
    """The rows of ``data`` in the format that knows its headers; a file-wide refusal for an
    empty file, unknown or repeated headers, or a required column missing. Rows with more
    cells than headers, or a cell too long, are row problems; blank lines are skipped."""
    records = _records(decode(data))
    first = next(records, None)
    if first is None or not any(cell.strip() for cell in first[1]):
        raise FileRefused([RowProblem(1, "", "the file is empty: it needs a header row")])
    headers = [cell.strip().removeprefix(BOM) for cell in first[1]]
    normal = [normal_header(header) for header in headers]
    chosen = max(formats, key=lambda f: sum(1 for h in normal if h in f.columns))
    problems = [
        RowProblem(1, header, f"unknown column {header!r}: {_known(chosen)}")
        for header, key in zip(headers, normal, strict=True)
        if key not in chosen.columns
    ]
    seen: dict[str, str] = {}
    for header, key in zip(headers, normal, strict=True):
        if key in seen and key in chosen.columns:
            problems.append(RowProblem(1, header, f"the column {header!r} appears twice"))
        seen.setdefault(key, header)
    targets = [chosen.columns.get(key) for key in normal]
    header_of = {t: h for t, h in zip(targets, headers, strict=True) if t is not None}
    for name in chosen.required:
        if name not in header_of:
            problems.append(RowProblem(1, name, f"a column {name!r} is needed: {_known(chosen)}"))
    if problems:
        raise FileRefused(problems)
    rows: list[Row] = []
    row_problems: list[RowProblem] = []
    for line, record in records:
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > len(headers) and any(cell.strip() for cell in record[len(headers) :]):
            row_problems.append(
                RowProblem(
                    line, "", f"{len(record)} cells, but the header names {len(headers)} columns"
                )
            )
            continue
        cells: dict[str, str] = {}
        too_long = None
        for target, header, cell in zip(targets, headers, record, strict=False):
            if target is None:
                continue
            if len(cell) > MAX_CELL:
                too_long = header
            cells[target] = cell.strip()
        if too_long is not None:
            row_problems.append(RowProblem(line, too_long, f"longer than {MAX_CELL} characters"))
            continue
        rows.append(Row(line, cells, header_of))
    return Table(chosen, rows, row_problems)


def _known(chosen: Format) -> str:
    names = [key for key, target in chosen.columns.items() if target is not None]
    return "the columns are " + ", ".join(names)
