"""Reports over HTTP as coordinators, members and funders meet them: JSON, CSV and charts."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from tests.people import make_person

TODAY = date.today()


@pytest.fixture
async def busy(client, engine, world):
    """The world's timebank with auto-approval and a few weeks of exchanges among seven
    members (five more than the world has), so funder cells can pass the threshold."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE timebanks SET approval_mode = 'automatic', confirmation_required = false"
                " WHERE id = :id"
            ),
            {"id": world.timebank.id},
        )
    extra = [
        await make_person(engine, f"m{n}", timebank=world.timebank, roles=("member",))
        for n in range(5)
    ]
    members = [world.member, world.other_member, *extra]
    logged = []
    for n in range(14):
        giver, receiver = members[n % 7], members[(n + 1 + n // 7) % 7]
        response = await client.post(
            f"/api/v1/timebanks/{world.timebank.slug}/exchanges",
            json={
                "giver_id": giver.participant_id,
                "receiver_id": receiver.participant_id,
                "minutes": 30 + 15 * (n % 4),
                "service_date": (TODAY - timedelta(days=3 * n)).isoformat(),
                "category": "gardening" if n % 2 else "lifts",
                "description": f"help number {n}",
            },
            headers=world.coordinator.headers,
        )
        assert response.status_code == 201, response.text
        assert response.json()["state"] == "approved"
        logged.append(response.json())
    return world, members, logged


def url(world, report: str) -> str:
    start = (TODAY - timedelta(days=60)).isoformat()
    return f"/api/v1/timebanks/{world.timebank.slug}/reports/{report}?from={start}&to={TODAY}"


async def test_coordinator_sees_everyones_reciprocity(client, busy):
    world, members, logged = busy
    response = await client.get(url(world, "reciprocity"), headers=world.coordinator.headers)
    assert response.status_code == 200, response.text
    rows = {row["participant_id"]: row for row in response.json()["rows"]}
    assert {m.participant_id for m in members} <= set(rows)
    total_given = sum(row["given_minutes"] for row in rows.values())
    assert total_given == sum(e["minutes"] for e in logged)
    assert all(0 <= row["reciprocity"] <= 1 for row in rows.values())


async def test_member_sees_only_their_own_row(client, busy):
    world, _, _ = busy
    response = await client.get(url(world, "reciprocity"), headers=world.member.headers)
    assert response.status_code == 200
    assert [row["participant_id"] for row in response.json()["rows"]] == [
        world.member.participant_id
    ]
    other = await client.get(
        url(world, "reciprocity") + f"&participant_id={world.other_member.participant_id}",
        headers=world.member.headers,
    )
    assert other.status_code == 403


async def test_funder_gets_aggregates_of_a_published_period_only(client, busy):
    """The funder view names nobody and covers whole closed periods only (by default the
    latest published quarter); what it withholds is tested in test_disclosure.py."""
    world, _, _ = busy
    refused = await client.get(url(world, "contribution"), headers=world.funder.headers)
    assert refused.status_code == 422  # sixty days up to today: neither whole nor closed
    response = await client.get(
        f"/api/v1/timebanks/{world.timebank.slug}/reports/contribution",
        headers=world.funder.headers,
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["view"] == "funder" and report["min_cell"] == 5
    for name in ("display_name", "participant_id", "Ada", "Bea"):
        assert name not in response.text
    for bucket in report["series"]:
        if bucket["active"] is None:
            assert "active" in bucket["suppressed"] and bucket["hours"] is None


async def test_funder_cannot_reach_names_or_personal_routes(client, busy):
    world, _, logged = busy
    slug = world.timebank.slug
    for path in (
        url(world, "reciprocity"),
        f"/api/v1/timebanks/{slug}/participants",
        f"/api/v1/timebanks/{slug}/participants/{world.member.participant_id}",
        f"/api/v1/timebanks/{slug}/participants/{world.member.participant_id}/balance",
        f"/api/v1/timebanks/{slug}/participants/{world.member.participant_id}/statement",
        f"/api/v1/timebanks/{slug}/exchanges",
        f"/api/v1/timebanks/{slug}/exchanges/{logged[0]['id']}",
    ):
        response = await client.get(path, headers=world.funder.headers)
        assert response.status_code in (403, 404), (path, response.status_code)


async def test_csv_downloads_name_their_charset_once(client, busy):
    world, _, _ = busy
    for kind in ("contribution", "reciprocity"):
        response = await client.get(
            url(world, kind) + "&format=csv", headers=world.coordinator.headers
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/csv; charset=utf-8"


async def test_contribution_csv_has_one_header_and_the_json_figures(client, busy):
    world, _, _ = busy
    as_json = (
        await client.get(url(world, "contribution"), headers=world.coordinator.headers)
    ).json()
    as_csv = await client.get(
        url(world, "contribution") + f"&as_of={as_json['as_of'].replace('+', '%2B')}",
        headers={**world.coordinator.headers, "Accept": "text/csv"},
    )
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert as_csv.text.count("section,") == 1
    totals = next(row for row in rows if row["section"] == "totals")
    assert int(totals["minutes"]) == as_json["totals"]["minutes"]
    assert int(totals["active"]) == as_json["totals"]["active"]
    series = [row for row in rows if row["section"] == "series"]
    assert [int(row["exchanges"]) for row in series] == [b["exchanges"] for b in as_json["series"]]
    categories = {
        row["category"]: int(row["minutes"]) for row in rows if row["section"] == "category"
    }
    assert categories == {row["category"]: row["minutes"] for row in as_json["categories"]}


async def test_reciprocity_csv_streams_the_same_rows(client, busy):
    world, _, _ = busy
    as_json = (
        await client.get(url(world, "reciprocity"), headers=world.coordinator.headers)
    ).json()
    as_csv = await client.get(
        url(world, "reciprocity") + "&format=csv", headers=world.coordinator.headers
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [int(r["given_minutes"]) for r in rows] == [r["given_minutes"] for r in as_json["rows"]]
    assert as_csv.headers["x-report-as-of"]


@pytest.mark.parametrize("chart", ["series", "categories", "flows"])
async def test_charts_are_svg(client, busy, chart):
    world, _, _ = busy
    path = f"/api/v1/timebanks/{world.timebank.slug}/reports/contribution/charts/{chart}.svg"
    response = await client.get(path, headers=world.funder.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.lstrip().startswith("<?xml") and "<svg" in response.text


@pytest.mark.parametrize("chart", ["series", "categories", "flows"])
async def test_a_chart_with_nothing_to_draw_says_so_in_words(client, world, chart):
    """No exchanges: the full view says there were none; the funder view, where every figure
    rests on fewer than k people, says they are withheld. Text, not empty axes."""
    path = (
        f"/api/v1/timebanks/{world.timebank.slug}/reports/contribution/charts/{chart}.svg"
        f"?from={TODAY - timedelta(days=60)}&to={TODAY}"
    )
    full = await client.get(path, headers=world.coordinator.headers)
    funder = await client.get(path.split("?")[0], headers=world.funder.headers)  # its default
    assert full.status_code == funder.status_code == 200
    assert "No exchanges in this period" in full.text
    if chart == "series":
        # Every month has fewer than k active people (none), so every figure is withheld.
        assert "Withheld: fewer than 5 people took part" in funder.text
    else:
        # There are no rows to withhold: the funder view lists none either.
        assert "No exchanges in this period" in funder.text
    for svg in (full.text, funder.text):
        assert "Riverside Timebank" in svg and world.timebank.slug not in svg
        assert "<text" in svg


async def test_charts_name_months_and_the_timebank(client, busy):
    world, _, _ = busy
    path = f"/api/v1/timebanks/{world.timebank.slug}/reports/contribution/charts/series.svg"
    svg = (await client.get(path, headers=world.coordinator.headers)).text
    assert "Riverside Timebank" in svg and world.timebank.slug not in svg
    assert TODAY.strftime("%b") in svg and TODAY.isoformat() not in svg
    assert "Hours and active people, by month" in svg


async def test_asking_again_with_the_same_as_of_gives_the_same_report(client, busy):
    world, _, logged = busy
    first = (await client.get(url(world, "contribution"), headers=world.coordinator.headers)).json()
    # Afterwards: a reversal and a late, backdated entry.
    await client.post(
        f"/api/v1/timebanks/{world.timebank.slug}/exchanges/{logged[0]['id']}/reverse",
        json={"reason": "logged twice"},
        headers=world.coordinator.headers,
    )
    as_of = first["as_of"].replace("+", "%2B")
    again = await client.get(
        url(world, "contribution") + f"&as_of={as_of}", headers=world.coordinator.headers
    )
    assert again.json() == first
    now = (await client.get(url(world, "contribution"), headers=world.coordinator.headers)).json()
    assert now["totals"]["minutes"] == first["totals"]["minutes"] - logged[0]["minutes"]


async def test_reports_stay_a_few_seconds_behind_so_a_given_report_never_changes(engine, busy):
    from datetime import UTC, datetime

    from timebank.auth.schemas import Principal, TimebankAccess
    from timebank.reports.service import Reports
    from timebank.settings import Settings

    world, _, _ = busy
    admin = TimebankAccess(
        principal=Principal(user_id=world.admin.user_id, email="a", is_admin=True, token_id=0),
        timebank_id=world.timebank.id,
        timebank_slug=world.timebank.slug,
    )
    reports = Reports(engine, Settings(report_settle_seconds=30))
    start = TODAY - timedelta(days=60)
    report = await reports.contribution(admin, start=start, end=TODAY)
    lag = (datetime.now(UTC) - report.as_of).total_seconds()
    assert 29 < lag < 60
    assert report.totals.exchanges == 0  # everything in `busy` was approved moments ago
    asked_later = await reports.contribution(admin, start=start, end=TODAY, as_of=datetime.now(UTC))
    assert asked_later.as_of <= datetime.now(UTC) - timedelta(seconds=29)
