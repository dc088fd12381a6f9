"""The group session pages over HTTP: a coordinator ticks the people who came and records the
session once; a bad form comes back as sent with the fault beside its field; an attendee
confirms their own part; the session is decided as one."""

from __future__ import annotations

from datetime import date, timedelta

from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.people import World, make_person
from tests.web.pages import as_person, hidden_fields, submit, text_of
from timebank.participants.service import Participants

YESTERDAY = (date.today() - timedelta(days=1)).isoformat()


async def _people(engine: AsyncEngine, world: World, n: int) -> list[int]:
    enrolling = Participants(engine)
    return [(await enrolling.enrol(world.timebank, "member", f"Walker {i}")).id for i in range(n)]


async def _sessions(engine: AsyncEngine, world: World) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT count(*) FROM exchange_groups WHERE timebank_id = :tb"),
            {"tb": world.timebank.id},
        )
    return int(found or 0)


async def test_a_coordinator_records_a_session_once_and_approves_it(
    client: AsyncTestClient, world: World, engine: AsyncEngine
) -> None:
    walkers = await _people(engine, world, 10)
    as_person(client, world.coordinator)
    base = f"/t/{world.timebank.slug}"
    form = await client.get(f"{base}/sessions/new")
    assert form.status_code == 200
    assert "Walker 9" in form.text
    fields = {
        **hidden_fields(form.text),
        "host": str(world.member.participant_id),
        "side": "gives",
        "attendee": [str(w) for w in walkers],
        "duration": "1:30",
        "service_date": YESTERDAY,
        "category": "gardening",
        "description": "Walking group",
    }
    recorded = await submit(client, f"{base}/sessions/new", fields)
    assert recorded.status_code == 200, recorded.text
    words = text_of(recorded.text)
    assert "Recorded" in words and "10 people with Ada" in words and "15:00 in all" in words
    # The same form sent again records nothing new.
    again = await submit(client, f"{base}/sessions/new", fields)
    assert again.status_code == 200
    assert await _sessions(engine, world) == 1

    session_path = str(recorded.url.path)
    approved = await submit(client, f"{session_path}/approve")
    assert "Done: the session is now approved" in text_of(approved.text)


async def test_a_bad_session_form_comes_back_as_sent(
    client: AsyncTestClient, world: World, engine: AsyncEngine
) -> None:
    walkers = await _people(engine, world, 2)
    as_person(client, world.coordinator)
    base = f"/t/{world.timebank.slug}"
    form = await client.get(f"{base}/sessions/new")
    sent = {
        **hidden_fields(form.text),
        "host": str(world.member.participant_id),
        "attendee": [str(walkers[0])],
        "duration": "half an hour",
        "service_date": YESTERDAY,
        "category": "gardening",
        "description": "Kept note",
    }
    refused = await submit(client, f"{base}/sessions/new", sent)
    assert refused.status_code == 422
    words = text_of(refused.text)
    assert "Nothing was recorded yet" in words
    assert 'value="half an hour"' in refused.text
    none_ticked = await submit(
        client, f"{base}/sessions/new", {**sent, "attendee": [], "duration": "1"}
    )
    assert none_ticked.status_code == 422
    assert "Tick everyone who came" in text_of(none_ticked.text)
    assert await _sessions(engine, world) == 0


async def test_an_attendee_confirms_their_part_of_a_session_the_host_logged(
    client: AsyncTestClient, world: World, engine: AsyncEngine
) -> None:
    as_person(client, world.member)
    base = f"/t/{world.timebank.slug}"
    form = await client.get(f"{base}/sessions/new")
    assert form.status_code == 200
    assert 'name="host"' not in form.text  # a member logs sessions they ran themselves
    recorded = await submit(
        client,
        f"{base}/sessions/new",
        {
            **hidden_fields(form.text),
            "side": "gives",
            "attendee": [str(world.other_member.participant_id)],
            "duration": "1",
            "service_date": YESTERDAY,
            "category": "gardening",
        },
    )
    assert recorded.status_code == 200, recorded.text
    session_path = str(recorded.url.path)
    as_person(client, world.other_member)
    seen = await client.get(session_path)
    assert "Confirm: I was there" in seen.text
    confirmed = await submit(client, f"{session_path}/confirm")
    assert "Done: the session is now" in text_of(confirmed.text)
    assert "Confirm: I was there" not in confirmed.text
    # Someone who was not there is told it does not exist.
    as_person(client, await make_person(engine, "eve", timebank=world.timebank, roles=("member",)))
    assert (await client.get(session_path)).status_code == 404
    # A funder has no session form.
    as_person(client, world.funder)
    assert (await client.get(f"{base}/sessions/new")).status_code == 403


async def test_the_queue_shows_a_session_as_one_and_approves_it_whole(
    client: AsyncTestClient, world: World, engine: AsyncEngine
) -> None:
    walkers = await _people(engine, world, 3)
    api = f"/api/v1/timebanks/{world.timebank.slug}/exchanges"
    body = {
        "legs": [
            {"giver_id": world.member.participant_id, "receiver_id": w, "minutes": 45}
            for w in walkers
        ],
        "service_date": YESTERDAY,
        "category": "gardening",
    }
    logged = await client.post(api, json=body, headers=world.coordinator.headers)
    assert logged.status_code == 201, logged.text
    session_id = logged.json()["id"]
    as_person(client, world.admin)
    queue = await client.get(f"/t/{world.timebank.slug}/queue")
    words = text_of(queue.text)
    assert words.count("Group session: Ada with 3 people 2:15 in all") == 1
    decided = await submit(
        client, f"/t/{world.timebank.slug}/queue", {"ids": [str(session_id)], "action": "approve"}
    )
    assert f"No. {session_id}: approved" in text_of(decided.text)
    assert "Nothing waiting" in text_of(decided.text)
