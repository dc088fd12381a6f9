"""The demo timebank, with a grant, an opening balance, a leaver, a limit change and a group
session added, exported from the test database and restored into a fresh one: every balance,
statement, exchange and report a coordinator reads is the same in both, `timebank verify` is
clean, and the restored timebank exports to the very same files."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from tests.archive.conftest import FreshDatabase
from tests.conftest import unique_slug
from tests.people import Person, make_person
from tests.test_cli import env_with, run_cli
from timebank.app import create_app
from timebank.archive import Archives
from timebank.demo import load_demo
from timebank.settings import Settings

SETTINGS = Settings(cookie_secure=False, report_settle_seconds=0)
# What comes from a user of the instance (their id, sign-in email, roles): users are not in
# an archive. The participants' own contact columns are compared file by file below.
_USER_FIELDS = {"logged_by_user_id", "actor_user_id", "user_id", "signed_up", "email", "roles"}


def _without_users(found: Any) -> Any:
    if isinstance(found, dict):
        return {k: _without_users(v) for k, v in found.items() if k not in _USER_FIELDS}
    if isinstance(found, list):
        return [_without_users(item) for item in found]
    return found


async def _get(client: AsyncTestClient, person: Person, path: str) -> Any:
    response = await client.get(path, headers=person.headers)
    assert response.status_code == 200, (path, response.text)
    return response.json()


async def _pages(client: AsyncTestClient, person: Person, path: str, limit: int) -> list[Any]:
    items: list[Any] = []
    after: int | None = None
    while True:
        query = f"?limit={limit}" + (f"&after_id={after}" if after is not None else "")
        page = await _get(client, person, path + query)
        items += page["items"]
        after = page.get("next_after_id")
        if after is None:
            return items


async def what_a_coordinator_reads(
    client: AsyncTestClient, admin: Person, slug: str, as_of: datetime
) -> dict[str, Any]:
    """Every figure the service answers about the timebank, through its API."""
    base = f"/api/v1/timebanks/{slug}"
    people = await _pages(client, admin, f"{base}/participants", 200)
    read: dict[str, Any] = {
        "timebank": await _get(client, admin, base),
        "categories": await _get(client, admin, f"{base}/categories"),
        "participants": people,
        "exchanges": await _pages(client, admin, f"{base}/exchanges/", 200),
        "pot": await _get(client, admin, f"{base}/pot"),
        "flags": await _get(client, admin, f"{base}/ledger/flags"),
        "verify": await _get(client, admin, f"{base}/ledger/verify"),
    }
    for person in people:
        one = f"{base}/participants/{person['id']}"
        read[f"participant {person['id']}"] = await _get(client, admin, one)
        read[f"balance {person['id']}"] = await _get(client, admin, f"{one}/balance")
        read[f"statement {person['id']}"] = await _get(client, admin, f"{one}/statement?limit=500")
    today = date.today()
    start = today.replace(year=today.year - 5, day=1)
    period = f"from={start.isoformat()}&to={today.isoformat()}&as_of={as_of.isoformat()}"
    period = period.replace("+", "%2B")
    reports = f"{base}/reports"
    read["reciprocity"] = await _get(client, admin, f"{reports}/reciprocity?{period}")
    for interval in ("month", "quarter"):
        read[f"contribution {interval}"] = await _get(
            client, admin, f"{reports}/contribution?{period}&interval={interval}"
        )
    read["funder view"] = await _get(client, admin, f"{reports}/contribution?view=funder")
    return _without_users(read)


async def _add_what_the_demo_lacks(client: AsyncTestClient, admin: Person, slug: str) -> None:
    """A grant, an opening balance, a leaver, a limit change, a group session (with words a
    spreadsheet would take for formulas) and a publication to funders."""
    base = f"/api/v1/timebanks/{slug}"
    people = await _pages(client, admin, f"{base}/participants", 200)
    idle = [
        p
        for p in people
        if p["kind"] == "member" and not p["pending_in_minutes"] and not p["pending_out_minutes"]
    ]
    first, second, third, leaver = idle[:4]
    category = (await _get(client, admin, f"{base}/categories"))[0]["slug"]

    async def send(method: str, path: str, body: dict[str, Any]) -> None:
        response = await client.request(method, base + path, json=body, headers=admin.headers)
        assert response.status_code in (200, 201), (path, response.text)

    await send(
        "PUT",
        f"/participants/{first['id']}/limits",
        {"floor_minutes": -1200, "ceiling_minutes": 9000, "reason": "=SUM(A1) looked risky"},
    )
    await send(
        "POST",
        "/gifts",
        {
            "from_id": None,
            "to_id": second["id"],
            "minutes": 45,
            "note": "+44 thanks for the garden",
        },
    )
    await send("PUT", f"/participants/{third['id']}/opening-balance", {"minutes": -30})
    await send("POST", f"/participants/{leaver['id']}/leave", {})
    await send(
        "POST",
        "/exchanges/",
        {
            "service_date": (date.today() - timedelta(days=2)).isoformat(),
            "category": category,
            "description": '-lunch club, with "quotes", commas\nand a new line',
            "host_id": first["id"],
            "legs": [
                {"giver_id": first["id"], "receiver_id": second["id"], "minutes": 60},
                {"giver_id": first["id"], "receiver_id": third["id"], "minutes": 60},
            ],
        },
    )
    await _get(client, admin, f"{base}/reports/contribution?view=funder")  # publishes cells


async def _life_goes_on(
    client: AsyncTestClient, admin: Person, slug: str, people: list[dict[str, Any]]
) -> None:
    """The restored timebank takes new people, invitations and grants (new ids, past the
    restored ones)."""
    base = f"/api/v1/timebanks/{slug}"
    joined = await client.post(
        f"{base}/participants",
        json={"display_name": "Newcomer", "kind": "member", "email": "new@example.org"},
        headers=admin.headers,
    )
    assert joined.status_code == 201, joined.text
    assert joined.json()["id"] > max(person["id"] for person in people)
    assert joined.json()["invitation_token"]  # the way everyone is invited back
    granted = await client.post(
        f"{base}/gifts",
        json={"from_id": None, "to_id": joined.json()["id"], "minutes": 30, "note": "welcome"},
        headers=admin.headers,
    )
    assert granted.status_code == 201, granted.text


async def test_the_demo_timebank_comes_back_the_same_in_a_fresh_database(
    database_url: str,
    engine,
    client: AsyncTestClient,
    fresh_database: FreshDatabase,
    tmp_path: Path,
):
    slug = unique_slug("demo")
    await load_demo(database_url, SETTINGS, slug=slug, seed=2026)
    admin = await make_person(engine, "admin", is_admin=True)
    await _add_what_the_demo_lacks(client, admin, slug)
    archive = tmp_path / "demo.zip"
    await Archives(engine).export_to(slug, archive)

    restored_url, restored_engine = await fresh_database()
    restored = await Archives(restored_engine).restore(archive)
    assert restored.slug == slug
    for file in (
        "gifts.csv",
        "opening_balances.csv",
        "departures.csv",
        "exchange_groups.csv",
        "account_limit_changes.csv",
        "published_cells.csv",
    ):
        assert restored.rows[file] >= 1, file  # every kind of row made the trip

    again = tmp_path / "again.zip"
    await Archives(restored_engine).export_to(slug, again)

    as_of = datetime.now(UTC)
    restored_admin = await make_person(restored_engine, "admin", is_admin=True)
    async with AsyncTestClient(app=create_app(SETTINGS, database_url=restored_url)) as there:
        after = await what_a_coordinator_reads(there, restored_admin, slug, as_of)
        await _life_goes_on(there, restored_admin, slug, after["participants"])
    before = await what_a_coordinator_reads(client, admin, slug, as_of)
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] == before[key], key
    assert before["verify"]["ok"] is True
    assert len(before["exchanges"]) >= 250 and before["reciprocity"]["rows"]

    verified = run_cli(
        "verify", "--timebank", slug, env=env_with(TIMEBANK_DATABASE_URL=restored_url)
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ledger OK" in verified.stdout

    # Exported again (before anything new happened there), the restored timebank gives the
    # very same files.
    with zipfile.ZipFile(archive) as first, zipfile.ZipFile(again) as second:
        for name in first.namelist():
            if name != "manifest.json":
                assert first.read(name) == second.read(name), name
        limit_changes = first.read("account_limit_changes.csv").decode()
        assert ",'=SUM(A1) looked risky" in limit_changes  # shown as text by a spreadsheet
    with zipfile.ZipFile(archive) as first:
        names = first.namelist()
        everything = b"".join(first.read(name) for name in names).lower()
    assert names[-1] == "manifest.json"
    assert b"argon2" not in everything and b"password" not in everything


async def test_the_commands_move_a_timebank_into_a_fresh_embedded_database(
    database_url: str, tmp_path: Path
):
    slug = unique_slug("demo")
    await load_demo(database_url, SETTINGS, slug=slug, seed=11)
    archive = tmp_path / "moving.zip"
    exported = run_cli(
        "export",
        "--timebank",
        slug,
        "--out",
        str(archive),
        env=env_with(TIMEBANK_DATABASE_URL=database_url),
    )
    assert exported.returncode == 0, exported.stderr
    assert f"timebank {slug} exported to {archive}" in exported.stdout

    # Without TIMEBANK_DATABASE_URL: the embedded server the service itself would use.
    embedded = env_with(TIMEBANK_DATA_DIR=str(tmp_path / "data"))
    imported = run_cli("import", "archive", str(archive), env=embedded)
    assert imported.returncode == 0, imported.stderr
    assert f"timebank {slug} restored" in imported.stdout
    assert "invite" in imported.stdout  # users are not in an archive
    verified = run_cli("verify", env=embedded)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "checked 1 timebank(s)" in verified.stdout and "ledger OK" in verified.stdout

    missing = run_cli(
        "export",
        "--timebank",
        "no-such-bank",
        "--out",
        str(tmp_path / "x.zip"),
        env=env_with(TIMEBANK_DATABASE_URL=database_url),
    )
    assert missing.returncode == 1 and "not found" in missing.stderr
    assert not (tmp_path / "x.zip").exists()
    nowhere = run_cli(
        "export",
        "--timebank",
        slug,
        "--out",
        str(tmp_path / "no" / "such" / "dir.zip"),
        env=env_with(TIMEBANK_DATABASE_URL=database_url),
    )
    assert nowhere.returncode == 1 and "cannot write" in nowhere.stderr
