"""Coordinator and funder pages over HTTP: the queue and its bulk decisions, logging on
behalf, reversing with a reason, adding and inviting someone (and the invitation accepted),
and the funder's report for a chosen period."""

from __future__ import annotations

from datetime import date

import pytest
from httpx import Response
from litestar.testing import AsyncTestClient
from pydantic import ValidationError

from tests.exchanges.conftest import Api, exchange_body
from tests.people import World
from tests.web.pages import as_person, hidden_fields, sign_in, submit, text_of
from timebank.app import create_app
from timebank.auth.deps import SESSION_COOKIE
from timebank.auth.service import AuthService
from timebank.settings import Settings


async def _awaiting(client, world: World) -> int:
    """An exchange Ada logged and Bea confirmed, through the API."""
    api = Api(client, world)
    exchange = await api.logged(world.member, exchange_body(world.member, world.other_member, 60))
    confirmed = await api.decide(world.other_member, exchange["id"], "confirm")
    assert confirmed.status_code == 200, confirmed.text
    return exchange["id"]


async def test_the_queue_shows_why_and_decides_many_at_once(client, world: World):
    first = await _awaiting(client, world)
    second = await _awaiting(client, world)
    as_person(client, world.coordinator)
    queue = await client.get(f"/t/{world.timebank.slug}/queue")
    text = text_of(queue.text)
    assert text.count("Ada gave Bea 1:00") == 2
    assert "Why here: the timebank asks a coordinator to approve every exchange" in text
    assert text.index(f"exchange no. {first}") < text.index(f"exchange no. {second}")
    rejected = await submit(
        client,
        f"/t/{world.timebank.slug}/queue",
        {"ids": [str(first), str(second)], "action": "reject", "reason": "not in our rules"},
    )
    assert rejected.status_code == 200
    assert f"No. {first}: rejected" in text_of(rejected.text)
    assert "Nothing waiting" in rejected.text
    again = await submit(
        client, f"/t/{world.timebank.slug}/queue", {"ids": [str(first)], "action": "approve"}
    )
    assert f"No. {first}: not approved" in text_of(again.text)


async def test_odd_ids_in_the_queue_form_decide_nothing_and_break_nothing(client, world: World):
    waiting = await _awaiting(client, world)
    as_person(client, world.coordinator)
    answer = await submit(
        client,
        f"/t/{world.timebank.slug}/queue",
        {"ids": ["²", "1" * 30, "-3"], "action": "approve"},
    )
    assert answer.status_code == 422
    queue = await client.get(f"/t/{world.timebank.slug}/queue")
    assert f"exchange no. {waiting}" in text_of(queue.text)


async def test_a_member_cannot_open_the_queue(client, world: World):
    as_person(client, world.member)
    assert (await client.get(f"/t/{world.timebank.slug}/queue")).status_code == 403


async def test_a_coordinator_logs_on_behalf_and_reverses_with_a_reason(client, world: World):
    as_person(client, world.coordinator)
    form = await client.get(f"/t/{world.timebank.slug}/log?on-behalf=true")
    assert 'name="giver"' in form.text and 'name="receiver"' in form.text
    logged = await submit(
        client,
        f"/t/{world.timebank.slug}/log",
        {
            "key": hidden_fields(form.text)["key"],
            "mode": "on_behalf",
            "giver": "bea",
            "receiver": "Ada",
            "duration": "1.5",
            "service_date": date.today().isoformat(),
            "category": "lifts",
        },
    )
    assert logged.status_code == 200, text_of(logged.text)
    assert "Bea gave Ada 1:30" in text_of(logged.text)
    assert "waiting for a coordinator" in logged.text
    path = logged.url.path
    approved = await submit(client, f"{path}/approve")
    assert "Done: the exchange is now approved" in text_of(approved.text)
    refused = await submit(client, f"{path}/reverse", {"reason": ""})
    assert refused.status_code == 422 and "Say why" in refused.text
    reversed_ = await submit(client, f"{path}/reverse", {"reason": "logged twice by mistake"})
    assert "reversed" in reversed_.text and "logged twice by mistake" in reversed_.text


async def test_participants_show_balances_to_coordinators_only(client, world: World):
    as_person(client, world.coordinator)
    listed = await client.get(f"/t/{world.timebank.slug}/participants")
    assert listed.status_code == 200
    assert "Ada" in listed.text and "Balance" in listed.text
    as_person(client, world.member)
    assert (await client.get(f"/t/{world.timebank.slug}/participants")).status_code == 403


async def _invite(client, world: World, name: str, email: str) -> tuple[Response, str]:
    """Add someone with an email through the coordinator's form; the page and the one-time
    invitation link it shows."""
    path = f"/t/{world.timebank.slug}/participants/new"
    form = await client.get(path)
    fields = {
        "key": hidden_fields(form.text)["key"],
        "display_name": name,
        "kind": "member",
        "email": email,
    }
    added = await submit(client, path, fields)
    assert added.status_code == 201, text_of(added.text)
    return added, added.text.split('class="secret"><a href="', 1)[1].split('"', 1)[0]


async def test_an_invited_person_joins_and_lands_on_their_home(client, world: World):
    await sign_in(client, world.coordinator)
    _, link = await _invite(client, world, "Cai", "cai-joins@example.org")
    token = link.split("token=", 1)[1]
    client.cookies.clear()
    page = await client.get(f"/invitation?token={token}")
    mismatch = await submit(
        client,
        "/invitation",
        {"token": token, "password": "a long password", "password_again": "another one"},
    )
    assert mismatch.status_code == 422 and "not the same" in mismatch.text
    joined = await submit(
        client,
        "/invitation",
        {"token": token, "password": "a long password", "password_again": "a long password"},
    )
    assert page.status_code == 200 and joined.status_code == 200
    assert SESSION_COOKIE in client.cookies
    assert joined.url.path == f"/t/{world.timebank.slug}"
    used = await submit(
        client,
        "/invitation",
        {"token": token, "password": "a long password", "password_again": "a long password"},
    )
    assert used.status_code == 404 and "already used" in used.text


async def test_an_invitation_never_signs_in_someone_who_has_a_password(
    client, engine, world: World
):
    """An invitation still open when its address got an account another way (made an admin,
    say) is no longer a way to a new account: its owner signs in to accept."""
    await sign_in(client, world.coordinator)
    _, link = await _invite(client, world, "Dee", "dee-invited@example.org")
    token = link.split("token=", 1)[1]
    await AuthService(engine, Settings()).create_admin(
        "dee-invited@example.org", "her own password"
    )
    client.cookies.clear()
    taken = await submit(
        client,
        "/invitation",
        {"token": token, "password": "a long password", "password_again": "a long password"},
    )
    assert taken.status_code == 409 and SESSION_COOKIE not in client.cookies
    assert "Sign in to accept it" in text_of(taken.text)


async def test_a_bad_invitation_form_keeps_what_was_typed(client, world: World):
    as_person(client, world.coordinator)
    refused = await submit(
        client,
        f"/t/{world.timebank.slug}/participants/new",
        {"display_name": "Dot", "kind": "member", "email": "not an email", "key": "k-1"},
    )
    assert refused.status_code == 422
    assert 'id="email-error"' in refused.text and 'value="Dot"' in refused.text


async def test_the_funder_report_for_a_period_names_nobody(client, world: World):
    as_person(client, world.funder)
    report = await client.get(
        f"/t/{world.timebank.slug}/report", params={"from": "2026-01-01", "to": "2026-03-31"}
    )
    assert report.status_code == 200
    text = text_of(report.text)
    assert "From 1 January 2026 to 31 March 2026" in text
    assert "Ada" not in text and "Bea" not in text
    assert "view=funder&amp;format=csv" in report.text
    assert "charts/series.svg?from=2026-01-01&amp;to=2026-03-31" in report.text
    # Funder figures are published for whole months, quarters and years only.
    half = await client.get(
        f"/t/{world.timebank.slug}/report", params={"from": "2026-01-01", "to": "2026-06-30"}
    )
    assert half.status_code == 422 and "whole calendar months, quarters and years" in half.text
    backwards = await client.get(
        f"/t/{world.timebank.slug}/report", params={"from": "2026-06-30", "to": "2026-01-01"}
    )
    assert backwards.status_code == 422 and "ends before it starts" in backwards.text
    nonsense = await client.get(f"/t/{world.timebank.slug}/report", params={"from": "soon"})
    assert nonsense.status_code == 422 and "is not a date" in text_of(nonsense.text)


async def test_a_member_cannot_open_the_report(client, world: World):
    as_person(client, world.member)
    assert (await client.get(f"/t/{world.timebank.slug}/report")).status_code == 403


async def test_an_invitation_link_uses_the_public_url_not_the_host_a_client_sent(
    database_url, world: World
):
    settings = Settings(
        cookie_secure=False, report_settle_seconds=0, public_url="https://timebank.example.org/"
    )
    async with AsyncTestClient(app=create_app(settings, database_url=database_url)) as client:
        as_person(client, world.coordinator)
        client.headers["host"] = "evil.example"
        added, link = await _invite(client, world, "Dee", "dee-public-url@example.org")
    assert link.startswith("https://timebank.example.org/invitation?token=")
    assert "evil.example" not in added.text


def test_the_public_url_must_be_a_plain_http_address():
    for wrong in ("javascript:alert(1)", "timebank.example.org", "https://x.example/?next=y"):
        with pytest.raises(ValidationError):
            Settings(public_url=wrong)
    assert Settings(public_url="https://x.example/timebank").public_url == (
        "https://x.example/timebank"
    )


# The pot, grants, opening balances and leaving ------------------------------------------------


async def _balance(client, world: World, person) -> int:
    client.cookies.clear()
    answer = await client.get(
        f"/api/v1/timebanks/{world.timebank.slug}/participants/{person.participant_id}/balance",
        headers=world.admin.headers,
    )
    return answer.json()["balance_minutes"]


async def test_a_coordinator_grants_from_the_pot_with_a_reason_and_sees_it_there(
    client, world: World
):
    await sign_in(client, world.coordinator)
    home = await client.get(f"/t/{world.timebank.slug}")
    assert f'href="/t/{world.timebank.slug}/pot"' in home.text
    pot = await client.get(f"/t/{world.timebank.slug}/pot")
    assert "Community pot" in text_of(pot.text) and "Nothing has moved" in text_of(pot.text)
    form = await client.get(f"/t/{world.timebank.slug}/give?grant=true")
    assert "Grant hours from the community pot" in text_of(form.text)
    no_reason = await submit(
        client, f"/t/{world.timebank.slug}/give", {"mode": "grant", "who": "Ada", "duration": "1"}
    )
    assert no_reason.status_code == 422 and 'id="note-error"' in no_reason.text
    fields = {"mode": "grant", "who": "Ada", "duration": "1", "note": "cannot earn this month"}
    granted = await submit(client, f"/t/{world.timebank.slug}/give", fields)
    assert granted.status_code == 200 and granted.url.path == f"/t/{world.timebank.slug}/pot"
    text = text_of(granted.text)
    assert "Granted" in text and "\u22121:00" in text and "grant" in text and "Ada" in text
    assert "cannot earn this month" in text
    assert await _balance(client, world, world.member) == 60


async def test_a_coordinator_sets_an_opening_balance_once_on_the_participants_page(
    client, world: World
):
    await sign_in(client, world.coordinator)
    people = await client.get(f"/t/{world.timebank.slug}/participants")
    here = f"/t/{world.timebank.slug}/participants/{world.member.participant_id}"
    assert f'href="{here}"' in people.text
    page = await client.get(here)
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Opening balance" in text and "Leaves" in text and "Ada" in text
    refused = await submit(client, f"{here}/opening-balance", {"opening": "soon"})
    assert refused.status_code == 422 and 'id="opening-error"' in refused.text
    assert 'value="soon"' in refused.text
    done = await submit(
        client, f"{here}/opening-balance", {"opening_sign": "debt", "opening": "2:30"}
    )
    assert done.status_code == 200 and "The opening balance is set" in text_of(done.text)
    assert "Opening balance: \u22122:30" in text_of(done.text)
    await sign_in(client, world.coordinator)
    assert await _balance(client, world, world.member) == -150


async def test_a_coordinator_records_a_leaving_and_the_balance_goes_where_they_say(
    client, world: World
):
    here = f"/t/{world.timebank.slug}/participants/{world.member.participant_id}"
    await sign_in(client, world.coordinator)
    await submit(client, f"{here}/opening-balance", {"opening_sign": "credit", "opening": "1"})
    nobody = await submit(client, f"{here}/leave", {"leave_to": "person", "leave_who": "Zed"})
    assert nobody.status_code == 422 and 'id="leave_who-error"' in nobody.text
    left = await submit(client, f"{here}/leave", {"leave_to": "person", "leave_who": "Bea"})
    assert left.status_code == 200
    text = text_of(left.text)
    assert "Recorded: Ada has left" in text and "went to Bea" in text
    assert "Record that Ada leaves" not in text  # the form is gone
    assert await _balance(client, world, world.other_member) == 60


async def test_a_coordinator_is_told_beside_the_name_that_a_leaver_s_balance_is_not_theirs(
    client, world: World
):
    here = f"/t/{world.timebank.slug}/participants/{world.member.participant_id}"
    await sign_in(client, world.coordinator)
    await submit(client, f"{here}/opening-balance", {"opening_sign": "credit", "opening": "1"})
    assert world.staff is not None
    as_person(client, world.staff)  # a coordinator with an account of their own: Sam
    refused = await submit(client, f"{here}/leave", {"leave_to": "person", "leave_who": "Sam"})
    assert refused.status_code == 403
    assert 'id="leave_who-error"' in refused.text
    assert "does not go to you" in text_of(refused.text)
    await sign_in(client, world.coordinator)
    assert await _balance(client, world, world.member) == 60


async def test_leaving_is_refused_on_the_page_while_an_exchange_waits(client, world: World):
    logged = await client.post(
        f"/api/v1/timebanks/{world.timebank.slug}/exchanges/",
        json={
            "giver_id": world.member.participant_id,
            "receiver_id": world.other_member.participant_id,
            "minutes": 30,
            "service_date": date.today().isoformat(),
            "category": "gardening",
            "description": "Weeded",
        },
        headers=world.member.headers,
    )
    assert logged.status_code == 201
    here = f"/t/{world.timebank.slug}/participants/{world.member.participant_id}"
    await sign_in(client, world.coordinator)
    refused = await submit(client, f"{here}/leave", {"leave_to": "pot"})
    assert refused.status_code == 409
    assert 'id="leave_to-error"' in refused.text and "pending" in text_of(refused.text)


async def test_a_member_opens_neither_the_pot_nor_a_participants_page(client, world: World):
    await sign_in(client, world.member)
    here = f"/t/{world.timebank.slug}/participants/{world.other_member.participant_id}"
    assert (await client.get(f"/t/{world.timebank.slug}/pot")).status_code == 403
    assert (await client.get(here)).status_code == 403
    refused = await submit(client, f"{here}/leave", {"leave_to": "pot"})
    assert refused.status_code == 403


async def test_a_coordinator_is_told_beside_the_name_that_they_cannot_grant_to_themselves(
    client, world: World
):
    assert world.staff is not None
    await sign_in(client, world.staff)
    fields = {"mode": "grant", "who": "Sam", "duration": "1", "note": "for me"}
    refused = await submit(client, f"/t/{world.timebank.slug}/give", fields)
    assert refused.status_code == 403
    assert 'id="who-error"' in refused.text and "your own account" in text_of(refused.text)
    assert await _balance(client, world, world.staff) == 0
