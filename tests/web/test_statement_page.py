"""The statement page: a member's own lines for a period, oldest first, with totals; the same
page of anyone for a coordinator, who prints it for those who get it by post; odd periods
answered with the form and a message; nobody else's statement for members or funders."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from litestar.testing import AsyncTestClient

from tests.exchanges.conftest import Api, exchange_body
from tests.people import World
from tests.web.pages import as_person, text_of

ADDRESS = "3 Mill Lane\nLower Hambleton"


async def exchanges_between(client: AsyncTestClient, world: World) -> None:
    """Ada gives Bea 1:30 and receives 0:45 from her, both approved."""
    api = Api(client, world)
    for giver, receiver, minutes, what in (
        (world.member, world.other_member, 90, "Dug the vegetable beds"),
        (world.other_member, world.member, 45, "Lift to the surgery"),
    ):
        logged = await api.logged(
            world.coordinator, exchange_body(giver, receiver, minutes, description=what)
        )
        if logged["state"] != "approved":
            decided = await api.decide(world.admin, logged["id"], "approve")
            assert decided.status_code == 200, decided.text


async def test_a_member_reads_their_statement_with_totals(client, world: World):
    await exchanges_between(client, world)
    as_person(client, world.member)
    shown = await client.get(f"/t/{world.timebank.slug}/statement")
    assert shown.status_code == 200, shown.text
    text = text_of(shown.text)
    assert "Riverside Timebank" in text and "Statement for Ada" in text
    today = date.today()
    assert f"to {today.day} {today.strftime('%B %Y')}" in text
    assert text.index("Dug the vegetable beds") < text.index("Lift to the surgery")
    assert "Bea" in text
    assert "Totals for the period 1:30 0:45" in text
    assert "Balance at the start 0:00" in text and "Balance at the end 0:45" in text
    home = await client.get(f"/t/{world.timebank.slug}")
    assert f"/t/{world.timebank.slug}/statement" in home.text


async def test_a_period_before_anything_moved_is_empty(client, world: World):
    await exchanges_between(client, world)
    as_person(client, world.member)
    shown = await client.get(
        f"/t/{world.timebank.slug}/statement", params={"from": "2020-01-01", "to": "2020-12-31"}
    )
    text = text_of(shown.text)
    assert shown.status_code == 200
    assert "From 1 January 2020 to 31 December 2020" in text
    assert "Nothing moved in or out in this period" in text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "31/01/2026"}, "from"),
        ({"to": "2026-02-30"}, "to"),
        ({"from": "1066-10-14"}, "from"),
        ({"to": "9999-12-31"}, "to"),
        ({"from": "2026-03-01", "to": "2026-01-01"}, "from"),
        ({"from": "2026-01-01\x00"}, "from"),
    ],
)
async def test_odd_periods_come_back_with_a_message(client, world: World, query, field):
    as_person(client, world.member)
    shown = await client.get(f"/t/{world.timebank.slug}/statement", params=query)
    assert shown.status_code in (400, 422), shown.text
    if shown.status_code == 422:
        assert f'id="{field}-error"' in shown.text


async def test_too_long_a_query_is_refused(client, world: World):
    as_person(client, world.member)
    shown = await client.get(f"/t/{world.timebank.slug}/statement", params={"from": "1" * 300})
    assert shown.status_code == 400


async def test_a_coordinator_prints_a_members_statement_with_their_address(client, world: World):
    await exchanges_between(client, world)
    await client.patch(
        f"/api/v1/timebanks/{world.timebank.slug}/participants/{world.member.participant_id}",
        json={"postal_address": ADDRESS, "contact_preference": "post"},
        headers=world.coordinator.headers,
    )
    as_person(client, world.coordinator)
    path = f"/t/{world.timebank.slug}/participants/{world.member.participant_id}"
    assert f"{path}/statement" in (await client.get(path)).text
    shown = await client.get(f"{path}/statement")
    assert shown.status_code == 200
    assert 'class="address statement-to print-only"' in shown.text
    assert "3 Mill Lane" in shown.text and "Dug the vegetable beds" in text_of(shown.text)


async def test_nobody_else_reads_a_members_statement(client, world: World):
    path = f"/t/{world.timebank.slug}/participants/{world.member.participant_id}/statement"
    as_person(client, world.other_member)
    assert (await client.get(path)).status_code == 403
    as_person(client, world.funder)
    assert (await client.get(path)).status_code == 403
    assert (await client.get(f"/t/{world.timebank.slug}/statement")).status_code == 403
    as_person(client, world.stranger_coordinator)
    assert (await client.get(path)).status_code == 404


async def test_a_timebank_that_shows_hours_given_shows_members_no_balance(client, world: World):
    await exchanges_between(client, world)
    changed = await client.patch(
        f"/api/v1/timebanks/{world.timebank.slug}",
        json={"balance_display": "given_received"},
        headers=world.coordinator.headers,
    )
    assert changed.status_code == 200
    as_person(client, world.member)
    text = text_of((await client.get(f"/t/{world.timebank.slug}/statement")).text)
    assert "Totals for the period 1:30 0:45" in text
    assert "Balance" not in text
    as_person(client, world.coordinator)
    path = f"/t/{world.timebank.slug}/participants/{world.member.participant_id}/statement"
    assert "Balance at the end 0:45" in text_of((await client.get(path)).text)


def test_yesterday_is_inside_the_default_period():
    from timebank.web.statement import period_of

    today = date(2026, 5, 1)
    period = period_of(None, None, today=today)
    assert period.start < today - timedelta(days=1) < period.end and not period.errors
