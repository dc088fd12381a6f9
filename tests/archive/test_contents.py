"""What an archive holds is decided table by table: a table added to the schema must be put in
the archive or said to stay out, with why; and every value survives its cell."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Text

from timebank.archive.contents import ARCHIVED, NOT_ARCHIVED, USER_COLUMNS, cell
from timebank.archive.contents import _decoder as decoder
from timebank.db import tables


def test_every_table_is_archived_or_said_to_stay_out():
    archived = {archived.name for archived in ARCHIVED}
    assert not archived & set(NOT_ARCHIVED)
    assert archived | set(NOT_ARCHIVED) == set(tables.metadata.tables)


def test_no_archived_column_names_a_user_or_holds_a_secret():
    for archived in ARCHIVED:
        for column in archived.columns:
            assert column not in USER_COLUMNS
            assert not column.endswith(("_hash", "token", "password")), (archived.name, column)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        "=1+1",
        "+44 20 7946 0000",
        "-lunch",
        "@home",
        "\tindent",
        "\rx",
        "'quoted",
        "''",
        'a,b "c"\nd',
        "émoji 🙂",
    ],
)
def test_text_comes_back_exactly_and_never_starts_like_a_formula(value):
    written = cell(value)
    assert not written.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert decoder(Text())(written) == value


def test_other_values_are_written_as_a_spreadsheet_reads_them():
    moment = datetime(2026, 12, 3, 21, 0, 5, 123456, tzinfo=UTC)
    assert cell(None) == "" and cell(-600) == "-600" and cell(True) == "true"
    assert cell(date(2026, 1, 31)) == "2026-01-31"
    assert datetime.fromisoformat(cell(moment)) == moment
