"""The upload page over the in-process client: a file with a bad row is shown with the row's
line and nothing is written; the good rows only are imported when asked, explicitly."""

from __future__ import annotations

from tests.imports.files import counts
from tests.web.pages import as_person, csrf_token

BAD = "name,opening_balance,external_id\nRosa,1:30,R1\nSol,an hour,R2\n"


async def _post(client, world, fields: dict[str, str], files=None):
    as_person(client, world.coordinator)
    data = {"csrf_token": await csrf_token(client), **fields}
    return await client.post(
        f"/t/{world.timebank.slug}/imports", data=data, files=files, follow_redirects=False
    )


async def test_a_file_with_a_bad_row_is_shown_and_nothing_is_written(client, world, raw):
    before = await counts(raw, world.timebank.id)
    response = await _post(
        client, world, {"kind": "people"}, files={"file": ("p.csv", BAD.encode(), "text/csv")}
    )
    assert response.status_code == 422
    assert 'id="line-3"' in response.text and "bad duration" in response.text
    assert "Import the good rows only" in response.text
    assert await counts(raw, world.timebank.id) == before
    # Confirming without asking for the good rows only imports nothing either.
    refused = await _post(client, world, {"kind": "people", "action": "import", "content": BAD})
    assert refused.status_code == 422
    assert await counts(raw, world.timebank.id) == before


async def test_the_good_rows_only_when_asked(client, world, raw):
    before = await counts(raw, world.timebank.id)
    fields = {"kind": "people", "action": "import", "content": BAD, "good_rows_only": "yes"}
    response = await _post(client, world, fields)
    assert response.status_code == 303
    assert response.headers["location"].endswith("imported=1&kind=people")
    assert (await counts(raw, world.timebank.id))["people"] == before["people"] + 1


async def test_the_page_says_what_to_choose(client, world):
    response = await _post(client, world, {})
    assert response.status_code == 422
    assert "Choose a CSV file" in response.text and "people or past exchanges" in response.text


async def test_odd_files_on_the_page_are_refused_with_a_page(client, world, raw):
    before = await counts(raw, world.timebank.id)
    nul = await _post(client, world, {"kind": "people", "content": "name\nAda\x00\n"})
    assert nul.status_code == 422 and "text/html" in nul.headers["content-type"]
    latin = await _post(
        client,
        world,
        {"kind": "people"},
        files={"file": ("p.csv", "name\nB\u00e9a\n".encode("latin-1"), "text/csv")},
    )
    assert latin.status_code == 422 and "UTF-8" in latin.text
    huge = await _post(
        client,
        world,
        {"kind": "people"},
        files={"file": ("p.csv", b"name\n" + b"A" * (17 * 1024 * 1024), "text/csv")},
    )
    assert huge.status_code == 413
    assert await counts(raw, world.timebank.id) == before
