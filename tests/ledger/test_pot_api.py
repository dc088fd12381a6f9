"""Gifts, grants, leaving, opening balances, the community pot and how a member sees their
balance, as a client of the API sees them: who may do what, what it answers, what it changes."""

from __future__ import annotations

import pytest

from tests.exchanges.conftest import exchange_body

PROBLEM = "https://timebank.dev/problems/"


def base(world) -> str:
    return f"/api/v1/timebanks/{world.timebank.slug}"


async def balance_of(client, world, person) -> int:
    answer = await client.get(
        f"{base(world)}/participants/{person.participant_id}/balance",
        headers=world.coordinator.headers,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["balance_minutes"]


async def pot(client, world) -> dict:
    answer = await client.get(f"{base(world)}/pot", headers=world.coordinator.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def gift(client, world, by, body, key=None):
    headers = {**by.headers, **({"Idempotency-Key": key} if key else {})}
    return await client.post(f"{base(world)}/gifts", json=body, headers=headers)


# Gifts and grants ------------------------------------------------------------------------------


async def test_a_member_gives_an_hour_to_another_and_both_balances_show_it(client, world):
    ada, bea = world.member, world.other_member
    body = {
        "from_id": ada.participant_id,
        "to_id": bea.participant_id,
        "minutes": 60,
        "note": "for the move",
    }
    answer = await gift(client, world, ada, body)
    assert answer.status_code == 201, answer.text
    given = answer.json()
    assert given["kind"] == "gift" and given["minutes"] == 60 and given["note"] == "for the move"
    assert (given["from_id"], given["to_id"]) == (ada.participant_id, bea.participant_id)
    assert given["transfer_id"] and given["id"] and given["created_at"]
    assert answer.headers["Idempotent-Replayed"] == "false"
    assert await balance_of(client, world, ada) == -60
    assert await balance_of(client, world, bea) == 60


async def test_a_gift_to_the_pot_shows_in_the_pot_with_its_note_and_a_grant_draws_on_it(
    client, world
):
    ada, bea = world.member, world.other_member
    given = await gift(
        client, world, ada, {"from_id": ada.participant_id, "to_id": None, "minutes": 90}
    )
    assert given.status_code == 201, given.text
    assert given.json()["to_id"] is None
    granted = await gift(
        client,
        world,
        world.coordinator,
        {"from_id": None, "to_id": bea.participant_id, "minutes": 30, "note": "cannot earn"},
    )
    assert granted.status_code == 201, granted.text
    assert granted.json()["kind"] == "grant" and granted.json()["from_id"] is None
    seen = await pot(client, world)
    assert seen["balance_minutes"] == 60
    newest, older = seen["movements"][:2]
    assert newest == {
        **newest,
        "kind": "grant",
        "minutes": 30,
        "direction": "out",
        "participant_id": bea.participant_id,
        "note": "cannot earn",
    }
    assert (older["kind"], older["direction"], older["participant_id"]) == (
        "gift",
        "in",
        ada.participant_id,
    )
    assert await balance_of(client, world, bea) == 30


async def test_nobody_gives_from_another_persons_account(client, world):
    ada, bea = world.member, world.other_member
    body = {"from_id": bea.participant_id, "to_id": ada.participant_id, "minutes": 60}
    for caller in (ada, world.coordinator, world.admin):
        answer = await gift(client, world, caller, body)
        assert answer.status_code == 403, (caller, answer.text)
        assert answer.json()["type"] == PROBLEM + "forbidden"
    assert await balance_of(client, world, bea) == 0


async def test_members_and_funders_do_not_grant_and_nobody_grants_to_themselves(client, world):
    ada = world.member
    body = {"from_id": None, "to_id": ada.participant_id, "minutes": 60, "note": "why not"}
    for caller in (ada, world.funder):
        answer = await gift(client, world, caller, body)
        assert answer.status_code == 403, answer.text
    staff = world.staff
    own = {**body, "to_id": staff.participant_id}
    answer = await gift(client, world, staff, own)
    assert answer.status_code == 403, answer.text
    assert "your own account" in answer.json()["detail"]
    assert (await pot(client, world))["movements"] == []


async def test_a_grant_needs_a_reason_and_a_member_to_go_to(client, world):
    ada = world.member
    for body, field in (
        ({"from_id": None, "to_id": ada.participant_id, "minutes": 60}, "note"),
        ({"from_id": None, "to_id": ada.participant_id, "minutes": 60, "note": "  "}, "note"),
        ({"from_id": None, "to_id": None, "minutes": 60, "note": "why"}, "to_id"),
    ):
        answer = await gift(client, world, world.coordinator, body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["key"] == field
    assert await balance_of(client, world, ada) == 0


async def test_a_gift_past_the_givers_floor_is_refused_naming_the_floor(client, world):
    ada, bea = world.member, world.other_member  # the default floor: -10 h
    body = {"from_id": ada.participant_id, "to_id": bea.participant_id, "minutes": 601}
    answer = await gift(client, world, ada, body)
    assert answer.status_code == 409, answer.text
    problem = answer.json()
    assert problem["type"] == PROBLEM + "limit-exceeded"
    assert problem["limit"] == "floor" and problem["floor_minutes"] == -600
    assert problem["available_minutes"] == 600
    assert "10:00" in problem["detail"]
    assert await balance_of(client, world, ada) == 0


async def test_a_gift_replays_under_its_key_and_another_body_under_it_is_refused(client, world):
    ada, bea = world.member, world.other_member
    body = {"from_id": ada.participant_id, "to_id": bea.participant_id, "minutes": 15}
    first = await gift(client, world, ada, body, key="gift-once")
    again = await gift(client, world, ada, body, key="gift-once")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = await gift(client, world, ada, {**body, "minutes": 16}, key="gift-once")
    assert other.status_code == 409
    assert other.json()["type"] == PROBLEM + "idempotency-mismatch"
    assert await balance_of(client, world, bea) == 15


@pytest.mark.parametrize(
    "change",
    [
        {"minutes": 0},
        {"minutes": -5},
        {"minutes": 10**30},
        {"minutes": 1.5},
        {"minutes": "60"},
        {"to_id": "two"},
        {"to_id": 0},
        {"to_id": 2**64},
        {"note": "nul\x00here"},
        {"note": "x" * 501},
        {"surprise": 1},
    ],
)
async def test_odd_gifts_are_refused_with_a_clear_problem(client, world, change):
    ada, bea = world.member, world.other_member
    body = {"from_id": ada.participant_id, "to_id": bea.participant_id, "minutes": 30, **change}
    answer = await gift(client, world, ada, body)
    assert answer.status_code in (400, 422), answer.text
    assert await balance_of(client, world, ada) == 0


async def test_a_gift_to_someone_of_another_timebank_is_not_found(client, world):
    ada = world.member
    body = {
        "from_id": ada.participant_id,
        "to_id": world.stranger_member.participant_id,
        "minutes": 30,
    }
    answer = await gift(client, world, ada, body)
    assert answer.status_code == 404, answer.text
    assert await balance_of(client, world, ada) == 0


# Leaving ---------------------------------------------------------------------------------------


async def leave(client, world, by, person, body, key=None):
    headers = {**by.headers, **({"Idempotency-Key": key} if key else {})}
    return await client.post(
        f"{base(world)}/participants/{person.participant_id}/leave", json=body, headers=headers
    )


async def test_a_member_leaves_giving_their_balance_to_another_and_nothing_reaches_them_after(
    client, world
):
    ada, bea = world.member, world.other_member
    await gift(
        client,
        world,
        world.coordinator,
        {"from_id": None, "to_id": ada.participant_id, "minutes": 45, "note": "start"},
    )
    left = await leave(client, world, ada, ada, {"balance_to": bea.participant_id}, key="bye")
    assert left.status_code == 201, left.text
    departure = left.json()
    assert departure["balance_minutes"] == 45 and departure["balance_to"] == bea.participant_id
    assert departure["transfer_id"] and departure["left_at"]
    assert await balance_of(client, world, bea) == 45
    assert await balance_of(client, world, ada) == 0
    replay = await leave(client, world, ada, ada, {"balance_to": bea.participant_id}, key="bye")
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    # Nothing is given to them or from them again.
    to_them = await gift(
        client,
        world,
        bea,
        {"from_id": bea.participant_id, "to_id": ada.participant_id, "minutes": 5},
    )
    assert to_them.status_code == 409, to_them.text
    twice = await leave(client, world, world.coordinator, ada, {"balance_to": None})
    assert twice.status_code == 409, twice.text
    assert await balance_of(client, world, bea) == 45


async def test_a_coordinator_records_a_member_leaving_their_debt_to_the_pot(client, world):
    ada, bea = world.member, world.other_member
    await gift(
        client,
        world,
        ada,
        {"from_id": ada.participant_id, "to_id": bea.participant_id, "minutes": 20},
    )
    left = await leave(client, world, world.coordinator, ada, {"balance_to": None})
    assert left.status_code == 201, left.text
    assert left.json()["balance_minutes"] == -20 and left.json()["balance_to"] is None
    assert (await pot(client, world))["balance_minutes"] == -20


async def test_only_the_participant_or_a_coordinator_records_a_leaving(client, world):
    ada, bea = world.member, world.other_member
    for caller in (bea, world.funder):
        answer = await leave(client, world, caller, ada, {"balance_to": None})
        assert answer.status_code == 403, answer.text
    answer = await leave(client, world, world.stranger_coordinator, ada, {"balance_to": None})
    assert answer.status_code == 404
    assert await balance_of(client, world, ada) == 0
    still = await gift(
        client, world, ada, {"from_id": ada.participant_id, "to_id": None, "minutes": 1}
    )
    assert still.status_code == 201  # their account is still open


async def test_leaving_is_refused_while_an_exchange_is_pending(client, world):
    ada, bea = world.member, world.other_member
    logged = await client.post(
        f"{base(world)}/exchanges/",
        json=exchange_body(ada, bea, 60),
        headers=ada.headers,
    )
    assert logged.status_code == 201, logged.text
    answer = await leave(client, world, ada, ada, {"balance_to": None})
    assert answer.status_code == 409, answer.text
    assert "pending" in answer.json()["detail"]


# Opening balances ------------------------------------------------------------------------------


async def opening(client, world, by, person, minutes):
    return await client.put(
        f"{base(world)}/participants/{person.participant_id}/opening-balance",
        json={"minutes": minutes},
        headers=by.headers,
    )


async def test_an_opening_balance_is_set_once_the_same_again_changes_nothing(client, world):
    ada = world.member
    first = await opening(client, world, world.coordinator, ada, 300)
    assert first.status_code == 200, first.text
    assert first.json()["minutes"] == 300 and first.headers["Idempotent-Replayed"] == "false"
    same = await opening(client, world, world.coordinator, ada, 300)
    assert same.status_code == 200 and same.headers["Idempotent-Replayed"] == "true"
    other = await opening(client, world, world.coordinator, ada, 200)
    assert other.status_code == 409, other.text
    assert await balance_of(client, world, ada) == 300
    assert (await pot(client, world))["balance_minutes"] == -300


async def test_an_opening_balance_in_debt_raises_the_pot(client, world):
    answer = await opening(client, world, world.admin, world.other_member, -120)
    assert answer.status_code == 200, answer.text
    assert (await pot(client, world))["balance_minutes"] == 120


async def test_only_coordinators_set_opening_balances_and_never_their_own(client, world):
    ada = world.member
    for caller in (ada, world.funder):
        assert (await opening(client, world, caller, ada, 60)).status_code == 403
    assert (await opening(client, world, world.staff, world.staff, 60)).status_code == 403
    assert (await opening(client, world, world.stranger_coordinator, ada, 60)).status_code == 404
    too_much = await opening(client, world, world.coordinator, ada, 10**12)
    assert too_much.status_code in (400, 422)
    past_floor = await opening(client, world, world.coordinator, ada, -601)
    assert past_floor.status_code == 409, past_floor.text
    assert await balance_of(client, world, ada) == 0


# The pot ---------------------------------------------------------------------------------------


async def test_the_pot_is_for_coordinators_only(client, world):
    for caller, status in (
        (world.member, 403),
        (world.funder, 403),
        (world.stranger_coordinator, 404),
        (world.admin, 200),
        (world.staff, 200),
    ):
        answer = await client.get(f"{base(world)}/pot", headers=caller.headers)
        assert answer.status_code == status, (caller, answer.text)
    assert (await client.get(f"{base(world)}/pot")).status_code == 401


async def test_the_pots_movements_come_in_pages_newest_first(client, world):
    ada = world.member
    for minutes in (1, 2, 3):
        answer = await gift(
            client, world, ada, {"from_id": ada.participant_id, "to_id": None, "minutes": minutes}
        )
        assert answer.status_code == 201
    path = f"{base(world)}/pot"
    first = (await client.get(path, params={"limit": 2}, headers=world.coordinator.headers)).json()
    assert [m["minutes"] for m in first["movements"]] == [3, 2]
    assert first["next_before_version"] is not None
    rest = await client.get(
        path,
        params={"limit": 2, "before_version": first["next_before_version"]},
        headers=world.coordinator.headers,
    )
    assert [m["minutes"] for m in rest.json()["movements"]] == [1]
    assert rest.json()["next_before_version"] is None
    assert rest.json()["balance_minutes"] == 6


# How a member sees their balance ----------------------------------------------------------------


async def test_a_member_sees_given_and_received_hours_and_no_net_figure_where_chosen(client, world):
    ada, bea = world.member, world.other_member
    for giver, receiver, minutes in ((ada, bea, 90), (bea, ada, 30)):
        logged = await client.post(
            f"{base(world)}/exchanges/",
            json=exchange_body(giver, receiver, minutes),
            headers=world.coordinator.headers,
        )
        assert logged.status_code == 201, logged.text
        approved = await client.post(
            f"{base(world)}/exchanges/{logged.json()['id']}/approve",
            headers=world.coordinator.headers,
        )
        assert approved.status_code == 200, approved.text
    await gift(client, world, ada, {"from_id": ada.participant_id, "to_id": None, "minutes": 5})
    own = f"{base(world)}/participants/{ada.participant_id}/balance"
    assert (await client.get(own, headers=ada.headers)).json()["balance_minutes"] == 55

    changed = await client.patch(
        base(world), json={"balance_display": "given_received"}, headers=world.coordinator.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["balance_display"] == "given_received"
    seen = (await client.get(own, headers=ada.headers)).json()
    assert seen["display"] == "given_received"
    assert (seen["given_minutes"], seen["received_minutes"]) == (90, 30)  # the gift is no exchange
    assert "balance_minutes" not in seen and "available_minutes" not in seen
    statement = f"{base(world)}/participants/{ada.participant_id}/statement"
    lines = (await client.get(statement, headers=ada.headers)).json()["lines"]
    assert lines and all(line["balance_after"] is None for line in lines)
    seen_by_coordinator = await client.get(statement, headers=world.coordinator.headers)
    assert seen_by_coordinator.json()["lines"][0]["balance_after"] == 55
    # Nor does their own record, nor a gift refused at the floor, tell them the net figure.
    record = f"{base(world)}/participants/{ada.participant_id}"
    assert (await client.get(record, headers=ada.headers)).json()["balance_minutes"] is None
    assert (await client.get(record, headers=world.coordinator.headers)).json()[
        "balance_minutes"
    ] == 55
    too_much = await gift(
        client, world, ada, {"from_id": ada.participant_id, "to_id": None, "minutes": 6000}
    )
    assert too_much.status_code == 409
    problem = too_much.json()
    assert problem["limit"] == "floor"
    assert "available_minutes" not in problem and "floor_minutes" not in problem
    assert not any(ch.isdigit() for ch in problem["detail"]), problem["detail"]
    # Coordinators always see the balance.
    assert (await client.get(own, headers=world.coordinator.headers)).json()[
        "balance_minutes"
    ] == 55
    refused = await client.patch(
        base(world), json={"balance_display": "hidden"}, headers=world.coordinator.headers
    )
    assert refused.status_code in (400, 422)
    by_member = await client.patch(
        base(world), json={"balance_display": "balance"}, headers=ada.headers
    )
    assert by_member.status_code == 403


async def test_a_coordinator_recording_someone_s_leaving_cannot_take_their_balance(client, world):
    ada, staff = world.member, world.staff
    assert staff is not None and staff.participant_id is not None
    granted = await gift(
        client,
        world,
        world.coordinator,
        {"from_id": None, "to_id": ada.participant_id, "minutes": 60, "note": "settling in"},
    )
    assert granted.status_code == 201, granted.text
    # Staff coordinates and holds an account: the leaver's hour does not go to them.
    taken = await leave(client, world, staff, ada, {"balance_to": staff.participant_id})
    assert taken.status_code == 403, taken.text
    assert await balance_of(client, world, ada) == 60
    to_pot = await leave(client, world, staff, ada, {"balance_to": None})
    assert to_pot.status_code == 201, to_pot.text
