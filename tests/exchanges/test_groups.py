"""Group sessions over the API: one host and many attendees logged as one record, reserved,
approved and reversed together, refused together naming the attendee at fault."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.exchanges.conftest import Api, set_policy
from tests.people import World
from timebank.ledger import Ledger
from timebank.participants.service import Participants

YESTERDAY = (date.today() - timedelta(days=1)).isoformat()


async def attendees(engine: AsyncEngine, world: World, n: int) -> list[int]:
    """``n`` new members who take part without signing in (as many people at a lunch club)."""
    enrolling = Participants(engine)
    return [(await enrolling.enrol(world.timebank, "member", f"Attendee {i}")).id for i in range(n)]


def session(host: int, others: list[int], minutes: int = 60, *, gives: bool = True) -> dict:
    legs = [
        {"giver_id": host, "receiver_id": other, "minutes": minutes}
        if gives
        else {"giver_id": other, "receiver_id": host, "minutes": minutes}
        for other in others
    ]
    return {
        "legs": legs,
        "service_date": YESTERDAY,
        "category": "gardening",
        "description": "Community garden morning",
    }


async def balances(engine: AsyncEngine, participant_ids: list[int]) -> dict[int, tuple[int, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT participant_id, balance, pending_in, pending_out FROM accounts"
                " WHERE participant_id = ANY(:ids)"
            ),
            {"ids": participant_ids},
        )
        return {row[0]: tuple(row[1:]) for row in rows}


async def counts(engine: AsyncEngine, timebank_id: int) -> tuple[int, int]:
    async with engine.connect() as conn:
        groups = await conn.scalar(
            text("SELECT count(*) FROM exchange_groups WHERE timebank_id = :tb"),
            {"tb": timebank_id},
        )
        legs = await conn.scalar(
            text("SELECT count(*) FROM exchanges WHERE timebank_id = :tb"), {"tb": timebank_id}
        )
        return int(groups or 0), int(legs or 0)


async def test_a_coordinator_logs_a_ten_person_session_and_approves_it_as_one(
    api: Api, world: World, engine: AsyncEngine
) -> None:
    host = world.member.participant_id
    assert host is not None
    people = await attendees(engine, world, 10)
    logged = await api.logged(world.coordinator, session(host, people))
    assert logged["kind"] == "group"
    assert logged["state"] == "awaiting_approval"
    assert (logged["host_id"], logged["host_side"]) == (host, "giver")
    assert (logged["attendees"], logged["minutes"]) == (10, 600)
    assert sorted(leg["receiver_id"] for leg in logged["legs"]) == sorted(people)
    held = await balances(engine, [host, *people])
    assert held[host] == (0, 600, 0)
    assert all(held[p] == (0, 0, 60) for p in people)

    approved = await api.decided(world.admin, logged["id"], "approve")
    assert approved["state"] == "approved"
    assert {leg["state"] for leg in approved["legs"]} == {"approved"}
    after = await balances(engine, [host, *people])
    assert after[host] == (600, 0, 0)
    assert all(after[p] == (-60, 0, 0) for p in people)
    assert (await api.verify())["ok"] is True

    # Each leg is an exchange of its own, pointing at its session.
    leg = await api.get(world.coordinator, logged["legs"][0]["id"])
    assert leg.status_code == 200 and leg.json()["group_id"] == logged["id"]

    reversed_ = await api.decided(world.admin, logged["id"], "reverse", "logged twice")
    assert reversed_["state"] == "reversed"
    back = await balances(engine, [host, *people])
    assert all(back[p][0] == 0 for p in [host, *people])
    assert (await api.verify())["ok"] is True


async def test_an_attendee_over_their_floor_refuses_the_whole_session_naming_them(
    api: Api, world: World, engine: AsyncEngine
) -> None:
    host = world.member.participant_id
    assert host is not None
    people = await attendees(engine, world, 5)
    tightened = await api.client.put(
        f"{api.base}/participants/{people[3]}/limits",
        json={"floor_minutes": -90, "ceiling_minutes": 6000, "reason": "new to the timebank"},
        headers=world.coordinator.headers,
    )
    assert tightened.status_code == 200, tightened.text
    before = await balances(engine, [host, *people])
    before_counts = await counts(engine, world.timebank.id)
    refused = await api.log(world.coordinator, session(host, people, minutes=120))
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["participant_id"] == people[3]
    assert problem["errors"][0]["key"] == "legs.3.receiver_id"
    assert await balances(engine, [host, *people]) == before
    assert await counts(engine, world.timebank.id) == before_counts


async def test_the_host_logs_and_attendees_confirm_their_own_legs(
    api: Api, world: World, engine: AsyncEngine
) -> None:
    host, ada, bea = (
        world.staff.participant_id if world.staff else None,
        world.member.participant_id,
        world.other_member.participant_id,
    )
    assert host is not None and ada is not None and bea is not None
    assert world.staff is not None
    logged = await api.logged(world.staff, session(host, [ada, bea]))
    # The host gave: nobody's balance goes down until they confirm.
    assert logged["state"] == "logged"
    assert {leg["state"] for leg in logged["legs"]} == {"logged"}

    # An attendee sees the session with their own leg only.
    seen = (await api.get(world.member, logged["id"])).json()
    assert [leg["receiver_id"] for leg in seen["legs"]] == [ada]
    assert seen["attendees"] == 2

    # The session waits for everyone before a coordinator can approve it.
    early = await api.decide(world.coordinator, logged["id"], "approve")
    assert early.status_code == 409, early.text
    await api.decided(world.member, logged["id"], "confirm")
    bea_leg = next(leg["id"] for leg in logged["legs"] if leg["receiver_id"] == bea)
    await api.decided(world.other_member, bea_leg, "confirm")
    waiting = (await api.get(world.coordinator, logged["id"])).json()
    assert waiting["state"] == "awaiting_approval"

    # A leg is not decided apart from its session.
    apart = await api.decide(world.coordinator, bea_leg, "approve")
    assert apart.status_code == 409 and str(logged["id"]) in apart.json()["detail"]
    # The host, a party, does not approve it.
    own = await api.decide(world.staff, logged["id"], "approve")
    assert own.status_code == 403
    approved = await api.decided(world.coordinator, logged["id"], "approve")
    assert approved["state"] == "approved"


async def test_automatic_approval_posts_a_session_as_it_is_logged(
    api: Api, world: World, engine: AsyncEngine
) -> None:
    await set_policy(engine, world.timebank.id, approval_mode="automatic")
    host = world.member.participant_id
    assert host is not None
    people = await attendees(engine, world, 3)
    logged = await api.logged(world.coordinator, session(host, people, minutes=30, gives=False))
    assert logged["state"] == "approved" and logged["host_side"] == "receiver"
    after = await balances(engine, [host, *people])
    assert after[host] == (-90, 0, 0)
    assert (await api.verify())["ok"] is True


async def test_rejecting_a_session_releases_every_leg(
    api: Api, world: World, engine: AsyncEngine
) -> None:
    assert world.staff is not None
    host = world.staff.participant_id
    ada, bea = world.member.participant_id, world.other_member.participant_id
    assert host is not None and ada is not None and bea is not None
    logged = await api.logged(world.staff, session(host, [ada, bea]))
    await api.decided(world.member, logged["id"], "confirm")
    rejected = await api.decided(world.coordinator, logged["id"], "reject")
    assert rejected["state"] == "rejected"
    assert sorted(leg["state"] for leg in rejected["legs"]) == ["cancelled", "rejected"]
    # Released together: the audit agrees with PostgreSQL that these legs were decided as one.
    assert (await api.verify())["ok"] is True
    assert all(b == (0, 0, 0) for b in (await balances(engine, [host, ada, bea])).values())


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda body: body["legs"].append(dict(body["legs"][0])), "legs.2.receiver_id"),
        (
            lambda body: body["legs"][1].update(giver_id=body["legs"][1]["receiver_id"] + 10**6),
            "legs",
        ),
        (lambda body: body["legs"][0].update(receiver_id=body["legs"][0]["giver_id"]), "legs"),
        (lambda body: body["legs"][0].update(minutes=721), "legs.0.minutes"),
        (lambda body: body.update(category="no-such"), "category"),
        (lambda body: body.update(legs=[]), "legs"),
    ],
)
async def test_a_malformed_session_is_refused_naming_the_field_and_changes_nothing(
    api: Api, world: World, engine: AsyncEngine, change: Any, key: str
) -> None:
    host = world.member.participant_id
    assert host is not None
    body = session(host, await attendees(engine, world, 2))
    change(body)
    before = await counts(engine, world.timebank.id)
    refused = await api.log(world.coordinator, body)
    assert refused.status_code == 422, refused.text
    assert any(error["key"].startswith(key) for error in refused.json()["errors"]), refused.text
    assert await counts(engine, world.timebank.id) == before


async def test_at_most_two_hundred_legs(api: Api, world: World, engine: AsyncEngine) -> None:
    host = world.member.participant_id
    assert host is not None
    body = session(host, list(range(10**6, 10**6 + 201)))
    refused = await api.log(world.coordinator, body)
    assert refused.status_code == 422
    # Refused for its length, before anyone in it is looked up.
    (error,) = refused.json()["errors"]
    assert error["key"] == "legs" and "200" in error["message"], error


async def test_a_retried_session_is_logged_once(
    api: Api, world: World, engine: AsyncEngine
) -> None:
    host = world.member.participant_id
    assert host is not None
    body = session(host, await attendees(engine, world, 3))
    first = await api.log(world.coordinator, body, **{"Idempotency-Key": "lunch-club-1"})
    again = await api.log(world.coordinator, body, **{"Idempotency-Key": "lunch-club-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = await api.log(
        world.coordinator, {**body, "description": "another"}, **{"Idempotency-Key": "lunch-club-1"}
    )
    assert other.status_code == 409
    assert (await counts(engine, world.timebank.id))[0] == 1


async def test_who_sees_and_logs_a_session(api: Api, world: World, engine: AsyncEngine) -> None:
    host = world.member.participant_id
    assert host is not None
    people = await attendees(engine, world, 2)
    logged = await api.logged(world.coordinator, session(host, people))
    assert (await api.get(world.stranger_member, logged["id"])).status_code == 404
    assert (await api.get(world.stranger_coordinator, logged["id"])).status_code == 404
    assert (await api.get(world.funder, logged["id"])).status_code == 403
    assert (await api.get(world.other_member, logged["id"])).status_code == 404
    # Nobody logs a session as someone else's host; an attendee does not log it.
    as_other = await api.log(world.other_member, session(host, people))
    assert as_other.status_code == 403
    attended = await api.log(
        world.other_member, session(host, [world.other_member.participant_id or 0])
    )
    assert attended.status_code == 403
    assert (await api.log(world.funder, session(host, people))).status_code == 403
    stranger = await api.log(world.stranger_coordinator, session(host, people))
    assert stranger.status_code == 404


async def test_nobody_who_left_is_in_a_session(api: Api, world: World, engine: AsyncEngine) -> None:
    host = world.member.participant_id
    assert host is not None
    people = await attendees(engine, world, 2)
    await Ledger(engine).leave(world.timebank.id, people[1])
    refused = await api.log(world.coordinator, session(host, people))
    assert refused.status_code == 409, refused.text
    assert refused.json()["participant_id"] == people[1]


async def test_a_single_exchange_is_logged_as_before(api: Api, world: World) -> None:
    ada, bea = world.member.participant_id, world.other_member.participant_id
    body = {
        "giver_id": ada,
        "receiver_id": bea,
        "minutes": 30,
        "service_date": YESTERDAY,
        "category": "gardening",
    }
    logged = await api.logged(world.member, body)
    assert logged["group_id"] is None and "legs" not in logged
