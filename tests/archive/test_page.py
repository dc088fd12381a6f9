"""The participants page offers coordinators the whole timebank as one zip, and the link works
with the page's own sign-in; a member gets neither the page nor the archive."""

from __future__ import annotations

import io
import json
import zipfile

from tests.web.pages import as_person


async def test_a_coordinator_downloads_the_archive_from_the_participants_page(client, world):
    slug = world.timebank.slug
    as_person(client, world.coordinator)
    page = await client.get(f"/t/{slug}/participants")
    assert page.status_code == 200
    link = f'href="/api/v1/timebanks/{slug}/export" download'
    assert link in page.text and "Export everything" in page.text

    download = await client.get(f"/api/v1/timebanks/{slug}/export")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    assert f'filename="{slug}-archive.zip"' in download.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        people = archive.read("participants.csv").decode()
    counted = {entry["name"]: entry["rows"] for entry in manifest["files"]}
    assert counted["participants.csv"] == 3  # Ada, Bea and Sam, the staff member
    assert "Ada" in people and "user_id" not in people.splitlines()[0]


async def test_a_member_gets_neither_the_page_nor_the_archive(client, world):
    slug = world.timebank.slug
    as_person(client, world.member)
    assert (await client.get(f"/t/{slug}/participants")).status_code == 403
    refused = await client.get(f"/api/v1/timebanks/{slug}/export")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
