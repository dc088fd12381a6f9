"""Importing people: our own columns and TimeOverflow's member list; every kind of bad row
reported with its line and column, and nothing written; a second run changes nothing."""

from __future__ import annotations

import pytest

from tests.imports.files import PEOPLE_HEADER, balances, counts, csv_bytes
from timebank.imports.report import FileRefused
from timebank.imports.service import Imports

GOOD = [
    (
        "Ada Lovelace",
        "member",
        "ada@example.org",
        "+44 20 7946 0000",
        "email",
        "2019-04-01",
        "2:30",
        "A1",
    ),
    ("Bea Smith", "", "", "01632 960002", "phone", "", "-90", "A2"),
    ("Riverside Library", "organisation", "lib@example.org", "", "", "2020-01-02", "", "A3"),
]


async def test_people_import_writes_people_and_opening_balances(engine, raw, timebank):
    imports = Imports(engine)
    report = await imports.run(timebank.slug, "people", csv_bytes(PEOPLE_HEADER, GOOD))
    assert report.written and report.new == 3 and report.opening_balances == 2
    assert await balances(raw, timebank.id) == {"A1": 150, "A2": -90, "A3": 0}
    row = await raw.fetchrow(
        "SELECT kind, email, phone, contact_preference, joined_on::text AS joined"
        " FROM participants WHERE timebank_id = $1 AND external_id = 'A1'",
        timebank.id,
    )
    assert dict(row) == {
        "kind": "member",
        "email": "ada@example.org",
        "phone": "+44 20 7946 0000",
        "contact_preference": "email",
        "joined": "2019-04-01",
    }
    # The pot holds the other side of the opening balances: the timebank still sums to zero.
    assert (
        await raw.fetchval("SELECT sum(balance) FROM accounts WHERE timebank_id = $1", timebank.id)
        == 0
    )


async def test_a_person_s_preference_is_a_way_the_file_records(engine, raw, timebank):
    # Without a preference: the first way recorded (email, phone); with one, it must be there.
    rows = [
        ("Cal", "", "", "01632 960003", "", "", "", "C1"),
        ("Dee", "", "dee@example.org", "", "text", "", "", "C2"),
    ]
    with pytest.raises(FileRefused) as refused:
        await Imports(engine).run(timebank.slug, "people", csv_bytes(PEOPLE_HEADER, rows))
    [problem] = refused.value.problems
    assert (problem.line, problem.column) == (3, "contact_preference")
    assert "needs a phone number" in problem.reason
    await Imports(engine).run(timebank.slug, "people", csv_bytes(PEOPLE_HEADER, rows[:1]))
    assert (
        await raw.fetchval(
            "SELECT contact_preference FROM participants"
            " WHERE timebank_id = $1 AND external_id = 'C1'",
            timebank.id,
        )
        == "phone"
    )


async def test_a_second_run_of_the_same_file_changes_nothing(engine, raw, timebank):
    imports = Imports(engine)
    data = csv_bytes(PEOPLE_HEADER, GOOD, bom=True)
    await imports.run(timebank.slug, "people", data)
    before = await counts(raw, timebank.id)
    again = await imports.run(timebank.slug, "people", data)
    assert (again.new, again.already_there, again.written) == (0, 3, False)
    assert await counts(raw, timebank.id) == before


async def test_people_are_matched_by_email_when_they_have_no_external_id(engine, raw, timebank):
    imports = Imports(engine)
    await imports.run(
        timebank.slug, "people", csv_bytes(("name", "email"), [("Ada", "ADA@example.org")])
    )
    report = await imports.run(
        timebank.slug,
        "people",
        csv_bytes(("name", "email", "opening balance"), [("Ada L", "ada@example.org", "1:00")]),
    )
    assert (report.new, report.already_there, report.opening_balances) == (0, 1, 1)
    assert await balances(raw, timebank.id) == {"Ada": 60}


BAD = [
    ("", "member", "", "", "", "", "", "B1"),  # 2: no name
    ("Cy", "alien", "", "", "", "", "", "B2"),  # 3: kind
    ("Dee", "member", "not-an-email", "", "", "", "", "B3"),  # 4: email
    ("Eve", "member", "", "call me", "", "", "", "B4"),  # 5: phone
    ("Fay", "member", "", "", "pigeon", "", "", "B5"),  # 6: contact preference
    ("Gus", "member", "", "", "", "03/04/2019", "", "B6"),  # 7: date
    ("Hal", "member", "", "", "", "", "1:75", "B7"),  # 8: bad duration
    ("Ivy", "member", "", "", "", "", "-11:00", "B8"),  # 9: below the floor (-10 h)
    ("Jo", "member", "", "", "", "", "", "B1"),  # 10: duplicate external id (line 2 is bad too)
    ("Kim", "member", "kim@example.org", "", "", "", "", "B10"),  # 11
    ("Kim K", "member", "KIM@example.org", "", "", "", "", "B11"),  # 12: duplicate email
]


async def test_every_bad_row_is_reported_and_nothing_is_written(engine, raw, timebank):
    imports = Imports(engine)
    before = await counts(raw, timebank.id)
    with pytest.raises(FileRefused) as refused:
        await imports.run(timebank.slug, "people", csv_bytes(PEOPLE_HEADER, BAD))
    found = {(p.line, p.column): p.reason for p in refused.value.problems}
    assert set(found) == {
        (2, "name"),
        (3, "kind"),
        (4, "email"),
        (5, "phone"),
        (6, "contact_preference"),
        (7, "joined_on"),
        (8, "opening_balance"),
        (9, "opening_balance"),
        (10, "external_id"),
        (12, "email"),
    }
    assert "bad duration" in found[(8, "opening_balance")]
    assert "cross a limit" in found[(9, "opening_balance")]
    assert "duplicate" in found[(10, "external_id")] and "line 2" in found[(10, "external_id")]
    assert "duplicate" in found[(12, "email")]
    assert refused.value.status_code == 422
    assert await counts(raw, timebank.id) == before


async def test_good_rows_only_imports_the_good_rows_and_reports_the_rest(engine, raw, timebank):
    report = await Imports(engine).run(
        timebank.slug, "people", csv_bytes(PEOPLE_HEADER, BAD), good_rows_only=True
    )
    assert report.written and report.new == 1  # Kim, line 11
    assert len(report.problems) == 10
    assert set(await balances(raw, timebank.id)) == {"B10"}


async def test_a_dry_run_checks_and_writes_nothing(engine, raw, timebank):
    before = await counts(raw, timebank.id)
    report = await Imports(engine).run(
        timebank.slug, "people", csv_bytes(PEOPLE_HEADER, GOOD), dry_run=True
    )
    assert (report.new, report.written, report.dry_run) == (3, False, True)
    assert await counts(raw, timebank.id) == before


@pytest.mark.parametrize(
    ("data", "line", "says"),
    [
        (b"name,email\nAda,a@example.org\nBea\x00,\n", 3, "NUL"),
        ("name\nAda\nB\u00e9a\n".encode("latin-1"), 3, "UTF-8"),
        (b"name,shoe size\nAda,5\n", 1, "unknown column 'shoe size'"),
        (b"email\nada@example.org\n", 1, "'name' is needed"),
        (b"", 1, "empty"),
        (b'name\n"Ada\n', 2, "cannot be read"),
    ],
)
async def test_a_file_that_cannot_be_read_is_refused_whole(engine, raw, timebank, data, line, says):
    before = await counts(raw, timebank.id)
    with pytest.raises(FileRefused) as refused:
        await Imports(engine).run(timebank.slug, "people", data)
    first = refused.value.problems[0]
    assert first.line == line and says in first.reason
    assert await counts(raw, timebank.id) == before


async def test_a_timeoverflow_member_list_imports_with_its_balances(engine, raw, timebank):
    # The columns of TimeOverflow's member list, in English; balances are in seconds.
    header = (
        "N",
        "Name",
        "Email",
        "Phone",
        "Alternative Phone",
        "Created",
        "Last login",
        "Locale",
        "Balance",
    )
    rows = [
        (
            "1",
            "Marta Puig",
            "marta@example.org",
            "600 111 222",
            "",
            "2018-02-03 10:11:12 UTC",
            "",
            "ca",
            "5400",
        ),
        ("2", "Joan Vila", "", "", "93 222 333", "2018-03-04 09:00:00 UTC", "", "es", "-3600"),
        ("7", "Centre Cívic", "", "", "", "2019-01-01 00:00:00 UTC", "", "ca", "0"),
    ]
    report = await Imports(engine).run(timebank.slug, "people", csv_bytes(header, rows))
    assert (report.format, report.new) == ("timeoverflow", 3)
    assert await balances(raw, timebank.id) == {"1": 90, "2": -60, "7": 0}
    joan = await raw.fetchrow(
        "SELECT phone, joined_on::text AS joined FROM participants"
        " WHERE timebank_id = $1 AND external_id = '2'",
        timebank.id,
    )
    assert dict(joan) == {"phone": "93 222 333", "joined": "2018-03-04"}
    with pytest.raises(FileRefused) as refused:
        await Imports(engine).run(
            timebank.slug, "people", csv_bytes(header, [("9", "Odd", "", "", "", "", "", "", "90")])
        )
    assert refused.value.problems[0].column == "Balance"
    assert "whole number of minutes" in refused.value.problems[0].reason


async def test_someone_found_by_email_gets_the_files_external_id(engine, raw, timebank):
    imports = Imports(engine)
    # Added by hand before the move: an email, no external id.
    await imports.run(
        timebank.slug, "people", csv_bytes(("name", "email"), [("Ada", "ada@example.org")])
    )
    data = csv_bytes(("name", "email", "external_id"), [("Ada L", "ada@example.org", "T-17")])
    first = await imports.run(timebank.slug, "people", data)
    assert (first.new, first.already_there, first.external_ids_recorded, first.written) == (
        0,
        1,
        1,
        True,
    )
    assert await balances(raw, timebank.id) == {"T-17": 0}
    before = await counts(raw, timebank.id)
    again = await imports.run(timebank.slug, "people", data)
    assert (again.already_there, again.external_ids_recorded, again.written) == (1, 0, False)
    assert await counts(raw, timebank.id) == before


async def test_someone_who_signed_up_is_found_by_the_email_they_sign_in_with(engine, raw, world):
    # Their participant row holds no email of its own: the address is their user's.
    slug, member = world.timebank.slug, world.member
    before = await counts(raw, world.timebank.id)
    rows = [("Dylan Again", "", member.email.upper(), "", "", "", "", "D1")]
    report = await Imports(engine).run(slug, "people", csv_bytes(PEOPLE_HEADER, rows))
    assert (report.new, report.already_there) == (0, 1)
    assert (await counts(raw, world.timebank.id))["people"] == before["people"]
    assert (
        await raw.fetchval(
            "SELECT external_id FROM participants WHERE id = $1", member.participant_id
        )
        == "D1"
    )


async def test_an_address_outside_ascii_is_a_bad_row(engine, timebank):
    rows = [("Ida", "", "\u0130da@example.org", "", "", "", "", "I1")]
    with pytest.raises(FileRefused) as refused:
        await Imports(engine).run(timebank.slug, "people", csv_bytes(PEOPLE_HEADER, rows))
    [problem] = refused.value.problems
    assert (problem.line, problem.column) == (2, "email")
    assert "plain ASCII" in problem.reason
