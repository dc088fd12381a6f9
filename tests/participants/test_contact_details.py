"""Members without email or a smartphone are first-class: a coordinator records how to reach
them (email, phone, text or post), edits it, and deactivates or reactivates them. As a client
of the API sees it; refusals change nothing."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import unique_slug
from tests.people import Person, World

PROBLEM = "https://timebank.dev/problems/"
ADDRESS = "3 Mill Lane\nLower Hambleton\nHB1 2CD"


def base(world: World) -> str:
    return f"/api/v1/timebanks/{world.timebank.slug}"


async def enrol(client: AsyncTestClient, world: World, **fields) -> dict:
    body = {"display_name": "Ned Neighbour", "kind": "member", **fields}
    added = await client.post(
        f"{base(world)}/participants", json=body, headers=world.coordinator.headers
    )
    assert added.status_code == 201, added.text
    return added.json()


async def seen(client: AsyncTestClient, world: World, participant_id: int) -> dict:
    shown = await client.get(
        f"{base(world)}/participants/{participant_id}", headers=world.coordinator.headers
    )
    assert shown.status_code == 200, shown.text
    return shown.json()


async def count(client: AsyncTestClient, world: World) -> int:
    listed = await client.get(
        f"{base(world)}/participants?limit=200", headers=world.coordinator.headers
    )
    return len(listed.json()["items"])


def error_keys(response) -> list[str]:
    return [error["key"] for error in response.json().get("errors", [])]


# --- Enrolling --------------------------------------------------------------------------------


async def test_someone_without_email_is_enrolled_with_a_phone_and_an_address(client, world):
    ned = await enrol(
        client,
        world,
        phone="01234 567890",
        postal_address="  3 Mill Lane \r\n\r\n Lower Hambleton\nHB1 2CD ",
        contact_preference="post",
        external_id="SHEET-17",
    )
    # No email: no invitation, and the address is kept line by line, trimmed.
    assert ned["email"] is None and ned["invitation_token"] is None
    assert ned["phone"] == "01234 567890" and ned["postal_address"] == ADDRESS
    assert ned["contact_preference"] == "post" and ned["external_id"] == "SHEET-17"
    assert ned["deactivated_at"] is None
    assert (await seen(client, world, ned["id"]))["postal_address"] == ADDRESS


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"phone": "07700 900123"}, "phone"),
        ({"postal_address": "1 High St"}, "post"),
        ({"email": "kit@example.org", "phone": "07700 900123"}, "email"),
        ({}, "email"),
    ],
)
async def test_without_a_preference_the_first_way_recorded_is_preferred(
    client, world, fields, expected
):
    if "email" in fields:
        fields = {**fields, "email": f"{unique_slug('kit')}@example.org"}
    assert (await enrol(client, world, **fields))["contact_preference"] == expected


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"contact_preference": "email"}, "email"),
        ({"contact_preference": "email", "phone": "0123 456"}, "email"),
        ({"contact_preference": "phone", "email": "x@example.org"}, "phone"),
        ({"contact_preference": "text", "postal_address": "1 High St"}, "phone"),
        ({"contact_preference": "post", "phone": "0123 456"}, "postal_address"),
    ],
)
async def test_a_preference_needs_its_way_recorded(client, world, fields, field):
    before = await count(client, world)
    refused = await client.post(
        f"{base(world)}/participants",
        json={"display_name": "Ola", "kind": "member", **fields},
        headers=world.coordinator.headers,
    )
    assert refused.status_code == 422, refused.text
    assert error_keys(refused) == [field]
    assert "contact preference" in refused.json()["detail"]
    assert await count(client, world) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "0123\x00456"),
        ("phone", "call me maybe"),
        ("phone", "12"),
        ("phone", "1" * 31),
        ("email", "ned\x00@example.org"),
        ("email", "ned\x07@example.org"),
        ("email", "no-at-sign"),
        ("postal_address", "3 Mill Lane\x00"),
        ("postal_address", "3 Mill Lane\x1b[31m"),
        ("postal_address", "3 Mill \u202eenaL"),
        ("postal_address", "x" * 501),
        ("postal_address", " \n "),
        ("external_id", "A\x00"),
        ("external_id", "two\nlines"),
        ("external_id", "   "),
        ("external_id", "x" * 101),
        ("contact_preference", "pigeon"),
    ],
)
async def test_odd_contact_details_are_refused_and_nobody_is_enrolled(client, world, field, value):
    before = await count(client, world)
    refused = await client.post(
        f"{base(world)}/participants",
        json={"display_name": "Odd", "kind": "member", field: value},
        headers=world.coordinator.headers,
    )
    assert refused.status_code in (400, 422), refused.text
    assert refused.json()["status"] == refused.status_code
    assert await count(client, world) == before


async def test_an_email_or_external_id_in_use_is_refused_naming_the_field(client, world):
    email = f"{unique_slug('ned')}@example.org"
    first = await enrol(client, world, email=email, external_id="ROW-1")
    before = await count(client, world)
    for fields, field in (
        ({"email": email.upper()}, "email"),
        ({"external_id": "ROW-1"}, "external_id"),
    ):
        refused = await client.post(
            f"{base(world)}/participants",
            json={"display_name": "Twin", "kind": "member", **fields},
            headers=world.coordinator.headers,
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["field"] == field
        assert refused.json()["participant_id"] == first["id"]
    assert await count(client, world) == before
    # Another timebank may hold the same email and external id.
    other = await client.post(
        f"/api/v1/timebanks/{world.other_timebank.slug}/participants",
        json={"display_name": "Ned", "kind": "member", "email": email, "external_id": "ROW-1"},
        headers=world.admin.headers,
    )
    assert other.status_code == 201, other.text


# --- Editing ----------------------------------------------------------------------------------


async def test_a_coordinator_edits_only_the_fields_sent(client, world):
    ned = await enrol(client, world, phone="01234 567890")
    path = f"{base(world)}/participants/{ned['id']}"
    edited = await client.patch(
        path,
        json={"postal_address": ADDRESS, "contact_preference": "post", "display_name": " Ned N "},
        headers=world.coordinator.headers,
    )
    assert edited.status_code == 200, edited.text
    after = edited.json()
    assert after["display_name"] == "Ned N" and after["phone"] == "01234 567890"
    assert after["postal_address"] == ADDRESS and after["contact_preference"] == "post"
    # Clearing the phone is fine (post needs the address), clearing the address is not.
    cleared = await client.patch(path, json={"phone": None}, headers=world.coordinator.headers)
    assert cleared.status_code == 200 and cleared.json()["phone"] is None
    refused = await client.patch(
        path, json={"postal_address": None}, headers=world.coordinator.headers
    )
    assert refused.status_code == 422 and error_keys(refused) == ["postal_address"]
    assert (await seen(client, world, ned["id"]))["postal_address"] == ADDRESS
    # A preference and its way given together.
    switched = await client.patch(
        path,
        json={"contact_preference": "text", "phone": "07700 900123", "postal_address": None},
        headers=world.coordinator.headers,
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["contact_preference"] == "text"
    assert switched.json()["postal_address"] is None


async def test_an_edit_that_takes_anothers_email_or_id_is_refused(client, world):
    ned = await enrol(client, world, email=f"{unique_slug('ned')}@example.org", external_id="N1")
    ola = await enrol(client, world, phone="0123 456", external_id="O1")
    path = f"{base(world)}/participants/{ola['id']}"
    for body, field in (({"email": ned["email"].upper()}, "email"), ({"external_id": "N1"}, None)):
        refused = await client.patch(path, json=body, headers=world.coordinator.headers)
        assert refused.status_code == 409, refused.text
        assert refused.json()["field"] == (field or "external_id")
    # The address of a member's user counts too.
    taken = await client.patch(
        path, json={"email": world.member.email}, headers=world.coordinator.headers
    )
    assert taken.status_code == 409 and taken.json()["field"] == "email"
    assert (await seen(client, world, ola["id"]))["external_id"] == "O1"
    # Keeping one's own is no conflict.
    same = await client.patch(
        f"{base(world)}/participants/{ned['id']}",
        json={"email": ned["email"], "external_id": "N1"},
        headers=world.coordinator.headers,
    )
    assert same.status_code == 200, same.text


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"display_name": None},
        {"display_name": "  "},
        {"display_name": "Ned\x00"},
        {"contact_preference": None},
        {"phone": "0123\x00"},
        {"balance_minutes": 600},
        {"kind": "organisation"},
        [],
    ],
)
async def test_odd_edits_are_refused_and_change_nothing(client, world, body):
    ned = await enrol(client, world, phone="01234 567890")
    refused = await client.patch(
        f"{base(world)}/participants/{ned['id']}", json=body, headers=world.coordinator.headers
    )
    assert refused.status_code in (400, 422), refused.text
    after = await seen(client, world, ned["id"])
    assert (after["display_name"], after["phone"]) == ("Ned Neighbour", "01234 567890")


async def test_editing_someone_of_another_timebank_or_nobody_is_not_found(client, world):
    for participant_id in (world.stranger_member.participant_id, 10**12):
        refused = await client.patch(
            f"{base(world)}/participants/{participant_id}",
            json={"phone": "0123 456"},
            headers=world.coordinator.headers,
        )
        assert refused.status_code in (404, 422), refused.text
    stranger = await client.get(
        f"/api/v1/timebanks/{world.other_timebank.slug}/participants/"
        f"{world.stranger_member.participant_id}",
        headers=world.admin.headers,
    )
    assert stranger.json()["phone"] is None


async def test_who_sees_contact_details(client, world):
    ned = await enrol(client, world, phone="01234 567890", contact_preference="phone")
    path = f"{base(world)}/participants"
    await client.patch(
        f"{path}/{world.member.participant_id}",
        json={"phone": "07700 900001"},
        headers=world.coordinator.headers,
    )
    # A member: their own details in full, the others as a directory without them.
    own = await client.get(f"{path}/{world.member.participant_id}", headers=world.member.headers)
    assert own.status_code == 200 and own.json()["phone"] == "07700 900001"
    other = await client.get(f"{path}/{ned['id']}", headers=world.member.headers)
    assert other.status_code == 403
    directory = await client.get(f"{path}?limit=200", headers=world.member.headers)
    assert directory.json()["view"] == "directory"
    assert "01234 567890" not in directory.text and "phone" not in directory.text
    # A funder: nobody's.
    for url in (path, f"{path}/{ned['id']}"):
        assert (await client.get(url, headers=world.funder.headers)).status_code == 403
    # A coordinator: everyone's.
    full = await client.get(f"{path}?limit=200", headers=world.coordinator.headers)
    shown = {item["id"]: item for item in full.json()["items"]}
    assert shown[ned["id"]]["phone"] == "01234 567890"
    assert shown[world.member.participant_id]["phone"] == "07700 900001"


async def test_a_member_may_not_edit_even_their_own_details(client, world):
    path = f"{base(world)}/participants/{world.member.participant_id}"
    refused = await client.patch(path, json={"phone": "0123 456"}, headers=world.member.headers)
    assert refused.status_code == 403
    assert (await seen(client, world, world.member.participant_id))["phone"] is None


# --- Deactivating -----------------------------------------------------------------------------


async def deactivate(client, world: World, who: Person | int, *, by: Person | None = None):
    participant_id = who if isinstance(who, int) else who.participant_id
    return await client.post(
        f"{base(world)}/participants/{participant_id}/deactivate",
        headers=(by or world.coordinator).headers,
    )


async def test_deactivating_is_idempotent_reversible_and_never_ones_own(client, world):
    first = await deactivate(client, world, world.member)
    assert first.status_code == 200 and first.json()["deactivated_at"] is not None
    again = await deactivate(client, world, world.member)
    assert again.json()["deactivated_at"] == first.json()["deactivated_at"]
    own = await deactivate(client, world, world.staff, by=world.staff)
    assert own.status_code == 403
    assert (await seen(client, world, world.staff.participant_id))["deactivated_at"] is None
    path = f"{base(world)}/participants/{world.member.participant_id}/reactivate"
    back = await client.post(path, headers=world.coordinator.headers)
    assert back.status_code == 200 and back.json()["deactivated_at"] is None
    assert (await client.post(path, headers=world.coordinator.headers)).status_code == 200
    # The coordinator's own participant: not even reactivated by themselves.
    await deactivate(client, world, world.staff, by=world.admin)
    mine = await client.post(
        f"{base(world)}/participants/{world.staff.participant_id}/reactivate",
        headers=world.staff.headers,
    )
    assert mine.status_code == 403


async def test_nothing_new_is_logged_with_someone_deactivated(client, world):
    from tests.exchanges.conftest import exchange_body

    await deactivate(client, world, world.other_member)
    path = base(world)
    logged = await client.post(
        f"{path}/exchanges",
        json=exchange_body(world.member, world.other_member, 60),
        headers=world.member.headers,
    )
    assert logged.status_code == 409, logged.text
    assert logged.json()["participant_id"] == world.other_member.participant_id
    assert error_keys(logged) == ["receiver_id"]
    on_behalf = await client.post(
        f"{path}/exchanges",
        json=exchange_body(world.other_member, world.member, 60),
        headers=world.coordinator.headers,
    )
    assert on_behalf.status_code == 409 and error_keys(on_behalf) == ["giver_id"]
    session = {
        "legs": [
            {"giver_id": world.member.participant_id, "receiver_id": pid, "minutes": 30}
            for pid in (world.staff.participant_id, world.other_member.participant_id)
        ],
        "service_date": exchange_body(world.member, world.member)["service_date"],
        "category": "gardening",
        "description": "Lunch club",
    }
    grouped = await client.post(f"{path}/exchanges", json=session, headers=world.member.headers)
    assert grouped.status_code == 409, grouped.text
    assert error_keys(grouped) == ["legs.1.receiver_id"]
    gift = await client.post(
        f"{path}/gifts",
        json={
            "from_id": world.member.participant_id,
            "to_id": world.other_member.participant_id,
            "minutes": 30,
        },
        headers=world.member.headers,
    )
    assert gift.status_code == 409 and error_keys(gift) == ["to_id"]
    listed = await client.get(f"{path}/exchanges", headers=world.coordinator.headers)
    assert listed.json()["items"] == []
    # Reactivated, they take part again.
    await client.post(
        f"{path}/participants/{world.other_member.participant_id}/reactivate",
        headers=world.coordinator.headers,
    )
    again = await client.post(
        f"{path}/exchanges",
        json=exchange_body(world.member, world.other_member, 60),
        headers=world.member.headers,
    )
    assert again.status_code == 201, again.text


async def test_a_deactivated_persons_user_logs_nothing_new_but_reads(client, world):
    from tests.exchanges.conftest import exchange_body

    await deactivate(client, world, world.member)
    path = base(world)
    for url, body in (
        (f"{path}/exchanges", exchange_body(world.member, world.other_member, 60)),
        (
            f"{path}/gifts",
            {"from_id": world.member.participant_id, "to_id": None, "minutes": 10},
        ),
    ):
        refused = await client.post(url, json=body, headers=world.member.headers)
        assert refused.status_code == 403, refused.text
        assert "reactivate" in refused.json()["detail"]
    own = await client.get(
        f"{path}/participants/{world.member.participant_id}/statement",
        headers=world.member.headers,
    )
    assert own.status_code == 200


async def test_a_pending_exchange_of_someone_deactivated_is_still_decided(client, world):
    from tests.exchanges.conftest import exchange_body

    path = base(world)
    logged = await client.post(
        f"{path}/exchanges",
        json=exchange_body(world.member, world.other_member, 45),
        headers=world.coordinator.headers,
    )
    assert logged.status_code == 201, logged.text
    exchange = logged.json()
    await deactivate(client, world, world.member)
    action = "approve" if exchange["state"] == "awaiting_approval" else "cancel"
    decided = await client.post(
        f"{path}/exchanges/{exchange['id']}/{action}", json={}, headers=world.coordinator.headers
    )
    assert decided.status_code == 200, decided.text


async def test_the_directory_can_leave_out_those_deactivated(client, world):
    await deactivate(client, world, world.other_member)
    path = f"{base(world)}/participants?limit=200"
    everyone = await client.get(path, headers=world.member.headers)
    active = await client.get(f"{path}&active=true", headers=world.member.headers)
    ids = {item["id"] for item in everyone.json()["items"]}
    active_ids = {item["id"] for item in active.json()["items"]}
    assert world.other_member.participant_id in ids - active_ids
    assert world.member.participant_id in active_ids


async def test_two_edits_racing_for_one_email_leave_it_with_one_person(client, world):
    import asyncio

    first = await enrol(client, world, phone="0123 456")
    second = await enrol(client, world, phone="0123 457")
    email = f"{unique_slug('race')}@example.org"
    answers = await asyncio.gather(
        *(
            client.patch(
                f"{base(world)}/participants/{person['id']}",
                json={"email": email, "external_id": "RACE-1"},
                headers=world.coordinator.headers,
            )
            for person in (first, second)
        )
    )
    assert sorted(answer.status_code for answer in answers) == [200, 409], [
        answer.text for answer in answers
    ]
    refused = next(answer for answer in answers if answer.status_code == 409)
    assert refused.json()["field"] in ("email", "external_id")
    held = [await seen(client, world, person["id"]) for person in (first, second)]
    assert sorted(bool(person["email"]) for person in held) == [False, True]


async def test_the_databases_own_refusal_of_a_taken_id_names_the_field(client, world, engine):
    from sqlalchemy import text

    from timebank.db.transactions import run_in_transaction
    from timebank.errors import Conflict

    first = await enrol(client, world, external_id="DB-1", email=f"{unique_slug('db')}@x.org")
    second = await enrol(client, world, phone="0123 456")
    for column, value in (("external_id", "DB-1"), ("email", first["email"].upper())):

        async def work(conn, column=column, value=value):
            await conn.execute(
                text(f"UPDATE participants SET {column} = :value WHERE id = :id"),
                {"value": value, "id": second["id"]},
            )

        with pytest.raises(Conflict) as refused:
            await run_in_transaction(engine, work)
        assert refused.value.status_code == 409
        assert refused.value.extra == {"field": column}
