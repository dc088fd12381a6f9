"""Importing history: past exchanges become approved exchanges with their transfers, counted
by service date; every kind of bad row is reported and nothing written; a second run changes
nothing; TimeOverflow's transfer list imports with the right balances."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.imports.files import HISTORY_HEADER, PEOPLE_HEADER, balances, counts, csv_bytes
from timebank.imports.report import FileRefused
from timebank.imports.service import Imports
from timebank.ledger.audit import audit
from timebank.reports.audit import aggregate_findings

PEOPLE = [
    ("Ada Lovelace", "member", "ada@example.org", "", "", "2019-01-01", "", "A1"),
    ("Bea Smith", "member", "bea@example.org", "", "", "2019-01-01", "", "A2"),
    ("Cy Jones", "member", "", "", "", "2019-01-01", "", "A3"),
    ("Sam Lee", "member", "", "", "", "2019-01-01", "", "S1"),
    ("Sam Lee", "member", "", "", "", "2019-01-01", "", "S2"),
]
HISTORY = [
    ("2020-03-01", "A1", "A2", "90", "gardening", "Weeding the front beds"),
    ("2020-03-02", "bea@example.org", "Cy Jones", "1:00", "Lifts and transport", ""),
    ("2020-03-02", "bea@example.org", "Cy Jones", "1:00", "Lifts and transport", ""),
    ("2021-06-15", "Cy Jones", "A1", "30", "", "Letters"),
]


async def _people(engine, timebank) -> None:
    await Imports(engine).run(timebank.slug, "people", csv_bytes(PEOPLE_HEADER, PEOPLE))


async def _audit_is_clean(engine, slug: str) -> None:
    async with engine.connect() as conn:
        report = await audit(conn, slug)
        findings = report.findings + await aggregate_findings(conn, slug)
    assert findings == []


async def test_history_becomes_approved_exchanges_with_their_transfers(engine, raw, timebank):
    await _people(engine, timebank)
    report = await Imports(engine).run(timebank.slug, "history", csv_bytes(HISTORY_HEADER, HISTORY))
    assert (report.new, report.written) == (4, True)
    assert await balances(raw, timebank.id) == {"A1": 60, "A2": 30, "A3": -90, "S1": 0, "S2": 0}
    rows = await raw.fetch(
        "SELECT e.state, e.service_date::text AS day, e.minutes, c.slug, e.description,"
        "       t.kind, t.memo"
        "  FROM exchanges e JOIN categories c ON c.id = e.category_id"
        "  JOIN transfers t ON t.id = e.transfer_id"
        " WHERE e.timebank_id = $1 ORDER BY e.service_date, e.id",
        timebank.id,
    )
    assert [tuple(row) for row in rows] == [
        (
            "approved",
            "2020-03-01",
            90,
            "gardening",
            "Weeding the front beds",
            "exchange",
            "Gardening",
        ),
        ("approved", "2020-03-02", 60, "lifts", "", "exchange", "Lifts and transport"),
        ("approved", "2020-03-02", 60, "lifts", "", "exchange", "Lifts and transport"),
        ("approved", "2021-06-15", 30, "other", "Letters", "exchange", "Other"),
    ]
    await _audit_is_clean(engine, timebank.slug)


async def test_a_second_run_finds_every_row_already_there(engine, raw, timebank):
    await _people(engine, timebank)
    data = csv_bytes(HISTORY_HEADER, HISTORY)
    await Imports(engine).run(timebank.slug, "history", data)
    before = await counts(raw, timebank.id)
    again = await Imports(engine).run(timebank.slug, "history", data)
    assert (again.new, again.already_there, again.written) == (0, 4, False)
    assert await counts(raw, timebank.id) == before
    # One more identical row in the file is one more exchange: rows are told apart by their
    # occurrence, not merged.
    more = await Imports(engine).run(
        timebank.slug, "history", csv_bytes(HISTORY_HEADER, [*HISTORY, HISTORY[1]])
    )
    assert (more.new, more.already_there) == (1, 4)


def _bad_rows() -> list[tuple[object, ...]]:
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    return [
        ("2020-01-01", "Nobody", "A1", "60", "", ""),  # 2: unknown person
        ("2020-01-01", "A1", "Sam Lee", "60", "", ""),  # 3: ambiguous name
        ("2020-01-01", "A1", "A2", "1:75", "", ""),  # 4: bad duration
        ("2020-01-01", "A1", "A2", "9:00", "", ""),  # 5: more than the largest exchange (8 h)
        ("2020-01-01", "A1", "A2", "0", "", ""),  # 6: zero
        ("01/02/2020", "A1", "A2", "60", "", ""),  # 7: bad date
        (tomorrow, "A1", "A2", "60", "", ""),  # 8: in the future
        ("2020-01-01", "A1", "A2", "60", "knitting", ""),  # 9: unknown category
        ("2020-01-01", "A1", "ada@example.org", "60", "", ""),  # 10: the same person
        ("2020-01-02", "A2", "A3", "8:00", "", ""),  # 11: fine (A3 to -8 h)
        ("2020-01-03", "A1", "A3", "3:00", "", ""),  # 12: A3 would reach -11 h: below the floor
    ]


async def test_every_bad_row_is_reported_and_nothing_is_written(engine, raw, timebank):
    await _people(engine, timebank)
    before = await counts(raw, timebank.id)
    with pytest.raises(FileRefused) as refused:
        await Imports(engine).run(timebank.slug, "history", csv_bytes(HISTORY_HEADER, _bad_rows()))
    found = {(p.line, p.column): p.reason for p in refused.value.problems}
    assert set(found) == {
        (2, "giver"),
        (3, "receiver"),
        (4, "minutes"),
        (5, "minutes"),
        (6, "minutes"),
        (7, "service_date"),
        (8, "service_date"),
        (9, "category"),
        (10, "receiver"),
        (12, "receiver"),
    }
    assert found[(2, "giver")].startswith("unknown person")
    assert found[(3, "receiver")].startswith("ambiguous name")
    assert "bad duration" in found[(4, "minutes")]
    assert "cross a limit" in found[(12, "receiver")] and "Cy Jones" in found[(12, "receiver")]
    assert await counts(raw, timebank.id) == before


async def test_good_rows_only_skips_the_bad_ones(engine, raw, timebank):
    await _people(engine, timebank)
    report = await Imports(engine).run(
        timebank.slug, "history", csv_bytes(HISTORY_HEADER, _bad_rows()), good_rows_only=True
    )
    assert (report.new, len(report.problems), report.written) == (1, 10, True)
    assert (await balances(raw, timebank.id))["A3"] == -480
    await _audit_is_clean(engine, timebank.slug)


async def test_a_timeoverflow_transfer_list_imports_with_the_right_balances(engine, raw, timebank):
    members = csv_bytes(
        (
            "N",
            "Name",
            "Email",
            "Phone",
            "Alternative Phone",
            "Created",
            "Last login",
            "Locale",
            "Balance",
        ),
        [
            ("1", "Marta Puig", "", "", "", "2018-02-03 10:11:12 UTC", "", "ca", "3600"),
            ("2", "Joan Vila", "", "", "", "2018-03-04 09:00:00 UTC", "", "es", "0"),
            ("3", "Centre Cívic", "", "", "", "2018-03-04 09:00:00 UTC", "", "ca", "0"),
        ],
    )
    await Imports(engine).run(timebank.slug, "people", members)
    # TimeOverflow's transfer list: the source ("From", whose balance went down) received
    # the help; amounts in seconds (h:mm as its page shows them is read too).
    transfers = csv_bytes(
        ("Date", "From", "To", "Post", "Quantity"),
        [
            (
                "2019-05-01 18:00:00 +0200",
                "Marta Puig (1)",
                "Joan Vila (2)",
                "Classes de guitarra",
                "5400",
            ),
            ("2019-05-03 10:00:00 +0200", "Joan Vila (2)", "Centre Cívic", "", "0:30"),
            ("2019-05-04 10:00:00 +0200", "inactive_user", "Joan Vila (2)", "", "3600"),
        ],
    )
    with pytest.raises(FileRefused) as refused:
        await Imports(engine).run(timebank.slug, "history", transfers)
    assert [(p.line, p.column) for p in refused.value.problems] == [(4, "From")]
    assert "no longer shows" in refused.value.problems[0].reason
    report = await Imports(engine).run(timebank.slug, "history", transfers, good_rows_only=True)
    assert (report.format, report.new) == ("timeoverflow", 2)
    assert await balances(raw, timebank.id) == {"1": 60 - 90, "2": 90 - 30, "3": 30}
    await _audit_is_clean(engine, timebank.slug)


@pytest.mark.parametrize("quantity", ["-3600", "0", "90", "1:75", "0.01", "x"])
async def test_a_timeoverflow_quantity_that_is_not_a_positive_whole_minute(
    engine, raw, timebank, quantity
):
    await _people(engine, timebank)
    transfers = csv_bytes(
        ("Date", "From", "To", "Post", "Quantity"),
        [("2019-05-01 18:00:00 +0200", "Ada Lovelace", "Bea Smith", "", quantity)],
    )
    before = await counts(raw, timebank.id)
    with pytest.raises(FileRefused) as refused:
        await Imports(engine).run(timebank.slug, "history", transfers)
    assert [(p.line, p.column) for p in refused.value.problems] == [(2, "Quantity")]
    assert "bad duration" in refused.value.problems[0].reason
    assert await counts(raw, timebank.id) == before
