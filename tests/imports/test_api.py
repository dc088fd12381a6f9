"""The import API: a coordinator uploads a CSV file as multipart form data and gets the
check report; dry runs answer 200, imports 201, refused files 422 with every bad row."""

from __future__ import annotations

from tests.imports.files import HISTORY_HEADER, PEOPLE_HEADER, counts, csv_bytes
from timebank.imports.schemas import MAX_UPLOAD_BYTES

PEOPLE = [
    ("Ada Lovelace", "member", "", "", "", "2019-01-01", "", "A1"),
    ("Bea Smith", "member", "", "", "", "2019-01-01", "", "A2"),
]


async def _upload(client, world, kind: str, data: bytes, by=None, **fields: str):
    by = by or world.coordinator
    return await client.post(
        f"/api/v1/timebanks/{world.timebank.slug}/imports",
        headers=by.headers,
        data={"kind": kind, **fields},
        files={"file": ("import.csv", data, "text/csv")},
    )


async def test_a_dry_run_answers_the_check_and_writes_nothing(client, world, raw):
    before = await counts(raw, world.timebank.id)
    response = await _upload(
        client, world, "people", csv_bytes(PEOPLE_HEADER, PEOPLE), dry_run="true"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["new"], body["written"], body["dry_run"], body["problems"]) == (2, False, True, [])
    assert await counts(raw, world.timebank.id) == before


async def test_a_good_file_is_imported_and_counted_by_service_date(client, world, raw):
    response = await _upload(client, world, "people", csv_bytes(PEOPLE_HEADER, PEOPLE))
    assert response.status_code == 201, response.text
    history = csv_bytes(
        HISTORY_HEADER,
        [
            ("2020-03-01", "A1", "A2", "90", "gardening", ""),
            ("2020-04-11", "A2", "A1", "30", "", ""),
        ],
    )
    response = await _upload(client, world, "history", history)
    assert response.status_code == 201, response.text
    assert response.json()["new"] == 2
    again = await _upload(client, world, "history", history)
    assert again.status_code == 200 and again.json()["already_there"] == 2
    report = await client.get(
        f"/api/v1/timebanks/{world.timebank.slug}/reports/contribution",
        params={"from": "2020-01-01", "to": "2020-12-31", "interval": "month"},
        headers=world.coordinator.headers,
    )
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["totals"]["minutes"] == 120
    by_month = {bucket["start"]: bucket["minutes"] for bucket in body["series"]}
    assert by_month["2020-03-01"] == 90 and by_month["2020-04-01"] == 30


async def test_a_file_with_bad_rows_is_refused_with_each_line_and_column(client, world, raw):
    await _upload(client, world, "people", csv_bytes(PEOPLE_HEADER, PEOPLE))
    before = await counts(raw, world.timebank.id)
    history = csv_bytes(
        HISTORY_HEADER,
        [
            ("2020-03-01", "A1", "A2", "90", "", ""),
            ("2020-03-01", "Nobody", "A2", "90", "", ""),
            ("2020-03-01", "A1", "A2", "ninety", "", ""),
        ],
    )
    response = await _upload(client, world, "history", history)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["line"], e["column"]) for e in errors] == [(3, "giver"), (4, "minutes")]
    assert await counts(raw, world.timebank.id) == before


async def test_what_the_upload_refuses(client, world, raw):
    before = await counts(raw, world.timebank.id)
    nul = await _upload(client, world, "people", b"name\nAda\x00\n")
    assert nul.status_code == 422 and "NUL" in nul.json()["errors"][0]["message"]
    latin = await _upload(client, world, "people", "name\nB\u00e9a\n".encode("latin-1"))
    assert latin.status_code == 422 and "UTF-8" in latin.json()["errors"][0]["message"]
    unknown = await _upload(client, world, "people", b"name,shoe size\nAda,5\n")
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["column"] == "shoe size"
    wrong_kind = await _upload(client, world, "pets", b"name\nAda\n")
    assert wrong_kind.status_code == 422
    no_file = await client.post(
        f"/api/v1/timebanks/{world.timebank.slug}/imports",
        headers=world.coordinator.headers,
        data={"kind": "people"},
        files={"other": ("x.csv", b"name\nAda\n", "text/csv")},
    )
    assert no_file.status_code in (400, 422)
    huge = await _upload(client, world, "people", b"name\n" + b"A" * MAX_UPLOAD_BYTES)
    assert huge.status_code == 413
    assert await counts(raw, world.timebank.id) == before


async def test_an_upload_does_not_ride_on_the_session_cookie(client, world):
    signed_in = await client.post(
        "/api/v1/auth/login",
        json={"email": world.coordinator.email, "password": "correct horse battery"},
    )
    assert signed_in.status_code == 200
    response = await client.post(
        f"/api/v1/timebanks/{world.timebank.slug}/imports",
        data={"kind": "people"},
        files={"file": ("people.csv", b"name\nAda\n", "text/csv")},
    )
    assert response.status_code == 415
