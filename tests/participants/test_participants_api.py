"""Coordinators add people and hand over invitations; members see a directory and their own
details; funders see no one. As a client of the API sees it."""

import asyncio
import uuid

from tests.conftest import unique_slug
from timebank.auth.service import AuthService
from timebank.participants.schemas import ParticipantCreate
from timebank.participants.service import Participants
from timebank.settings import Settings

PROBLEM = "https://timebank.dev/problems/"
NEW_PASSWORD = "a long enough password"


def participants_path(world) -> str:
    return f"/api/v1/timebanks/{world.timebank.slug}/participants"


async def test_an_invited_member_signs_up_and_sees_only_their_own_details(client, world):
    email = f"{unique_slug('gus')}@Example.org"
    added = await client.post(
        participants_path(world),
        json={"display_name": "Gus Gardener", "kind": "member", "email": email},
        headers=world.coordinator.headers,
    )
    assert added.status_code == 201, added.text
    gus = added.json()
    # Roles are granted when the invitation is accepted, not before.
    assert gus["roles"] == [] and gus["invited_roles"] == ["member"] and gus["kind"] == "member"
    assert gus["account_id"] and gus["joined_on"] and gus["signed_up"] is False
    assert gus["invitation_token"] and gus["invitation_expires_at"]

    accepted = await client.post(
        "/api/v1/auth/invitations/accept",
        json={"token": gus["invitation_token"], "password": NEW_PASSWORD},
    )
    assert accepted.status_code == 200, accepted.text
    login = await client.post(
        "/api/v1/auth/login", json={"email": email.lower(), "password": NEW_PASSWORD}
    )
    assert login.status_code == 200
    headers = {"Authorization": f"Bearer {login.json()['token']}"}

    own = await client.get(f"{participants_path(world)}/{gus['id']}", headers=headers)
    assert own.status_code == 200
    assert own.json()["display_name"] == "Gus Gardener" and own.json()["signed_up"] is True
    assert own.json()["roles"] == ["member"]
    other = await client.get(
        f"{participants_path(world)}/{world.member.participant_id}", headers=headers
    )
    assert other.status_code == 403
    assert other.json()["type"] == PROBLEM + "forbidden"

    # The token was for one use only.
    again = await client.post(
        "/api/v1/auth/invitations/accept",
        json={"token": gus["invitation_token"], "password": "someone else's password"},
    )
    assert again.status_code == 404


async def test_welcome_hours_show_in_the_coordinators_list(client, world):
    slug = unique_slug("welcome")
    created = await client.post(
        "/api/v1/timebanks",
        json={"slug": slug, "name": "Welcome Bank", "welcome_grant_minutes": 90},
        headers=world.admin.headers,
    )
    assert created.status_code == 201
    path = f"/api/v1/timebanks/{slug}/participants"
    added = await client.post(
        path,
        json={"display_name": "Hal Newcomer", "kind": "professional", "joined_on": "2026-01-05"},
        headers=world.admin.headers,
    )
    assert added.status_code == 201, added.text
    hal = added.json()
    assert hal["balance_minutes"] == 90 and hal["joined_on"] == "2026-01-05"
    assert hal["roles"] == [] and hal["email"] is None and hal["invitation_token"] is None

    listed = (await client.get(path, headers=world.admin.headers)).json()
    entry = next(item for item in listed["items"] if item["id"] == hal["id"])
    assert entry["balance_minutes"] == 90
    assert entry["pending_in_minutes"] == entry["pending_out_minutes"] == 0
    assert entry["floor_minutes"] == -600 and entry["ceiling_minutes"] == 6000


async def test_members_see_a_directory_and_funders_see_no_one(client, world):
    path = participants_path(world)
    full = (await client.get(path, headers=world.coordinator.headers)).json()["items"]
    assert {world.member.participant_id, world.other_member.participant_id} <= {
        item["id"] for item in full
    }
    assert all("balance_minutes" in item and "roles" in item for item in full)

    directory = await client.get(path, headers=world.member.headers)
    assert directory.status_code == 200
    items = directory.json()["items"]
    assert len(items) == len(full)
    assert all(set(item) == {"id", "display_name", "kind"} for item in items)

    for forbidden in (
        await client.get(path, headers=world.funder.headers),
        await client.get(f"{path}/{world.member.participant_id}", headers=world.funder.headers),
    ):
        assert forbidden.status_code == 403
    for person in (world.stranger_member, world.stranger_coordinator):
        assert (await client.get(path, headers=person.headers)).status_code == 404
    assert (await client.get(path)).status_code == 401


async def test_detail_of_a_participant_of_another_timebank_is_not_found(client, world):
    path = f"{participants_path(world)}/{world.stranger_member.participant_id}"
    assert (await client.get(path, headers=world.coordinator.headers)).status_code == 404
    own = await client.get(
        f"{participants_path(world)}/{world.member.participant_id}",
        headers=world.member.headers,
    )
    assert own.status_code == 200 and own.json()["roles"] == ["member"]


async def test_search_by_name_and_page_through(client, world):
    path = participants_path(world)
    headers = world.coordinator.headers
    marker = uuid.uuid4().hex[:8]
    for n in range(5):
        response = await client.post(
            path,
            json={"display_name": f"Pager {marker} {n}", "kind": "member"},
            headers=headers,
        )
        assert response.status_code == 201

    found = await client.get(path, params={"q": f"PAGER {marker.upper()}"}, headers=headers)
    assert [item["display_name"] for item in found.json()["items"]] == [
        f"Pager {marker} {n}" for n in range(5)
    ]
    assert (await client.get(path, params={"q": "%"}, headers=headers)).json()["items"] == []

    seen, after_id = [], None
    while True:
        params = {"q": marker, "limit": 2} | ({"after_id": after_id} if after_id else {})
        page = (await client.get(path, params=params, headers=headers)).json()
        seen += [item["display_name"] for item in page["items"]]
        after_id = page["next_after_id"]
        if after_id is None:
            break
    assert seen == [f"Pager {marker} {n}" for n in range(5)]

    for bad in ({"limit": 0}, {"limit": 201}, {"after_id": "x"}):
        response = await client.get(path, params=bad, headers=headers)
        assert response.status_code == 422, (bad, response.text)


async def test_only_coordinators_add_participants(client, world):
    body = {"display_name": "Ivy", "kind": "member"}
    for person in (world.member, world.funder):
        response = await client.post(participants_path(world), json=body, headers=person.headers)
        assert response.status_code == 403
    response = await client.post(
        participants_path(world), json=body, headers=world.stranger_coordinator.headers
    )
    assert response.status_code == 404
    for invalid in (
        {"display_name": " ", "kind": "member"},
        {"display_name": "Ivy", "kind": "robot"},
        {"display_name": "Ivy", "kind": "member", "email": "not an email"},
        {"display_name": "Ivy", "kind": "member", "roles": ["member"]},  # roles need an email
        {"display_name": "Ivy", "kind": "member", "email": "i@x.org", "roles": ["owner"]},
    ):
        response = await client.post(
            participants_path(world), json=invalid, headers=world.coordinator.headers
        )
        assert response.status_code == 422, (invalid, response.text)


async def test_a_retried_add_creates_one_participant(client, world):
    headers = {"Idempotency-Key": str(uuid.uuid4()), **world.coordinator.headers}
    body = {"display_name": f"Jo {uuid.uuid4().hex[:6]}", "kind": "organisation"}
    first = await client.post(participants_path(world), json=body, headers=headers)
    again = await client.post(participants_path(world), json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    found = await client.get(
        participants_path(world), params={"q": body["display_name"]}, headers=headers
    )
    assert len(found.json()["items"]) == 1

    changed = await client.post(
        participants_path(world), json={**body, "kind": "member"}, headers=headers
    )
    assert changed.status_code == 409
    assert changed.json()["type"] == PROBLEM + "idempotency-mismatch"


async def test_one_email_is_one_participant_per_timebank(client, world):
    email = f"{unique_slug('kim')}@example.org"
    body = {"display_name": "Kim", "kind": "member", "email": email}
    first = await client.post(participants_path(world), json=body, headers=world.admin.headers)
    assert first.status_code == 201
    again = await client.post(
        participants_path(world),
        json={**body, "email": email.upper()},
        headers=world.admin.headers,
    )
    assert again.status_code == 409
    assert again.json()["type"] == PROBLEM + "conflict"


async def test_an_address_with_an_account_elsewhere_gets_an_invitation_like_any_other(
    client, world
):
    # Nothing is linked by address: the person accepts the invitation signed in, or not at all.
    body = {"display_name": "Stranger", "kind": "member", "email": world.stranger_member.email}
    added = await client.post(
        participants_path(world), json=body, headers=world.coordinator.headers
    )
    assert added.status_code == 201, added.text
    assert added.json()["invitation_token"] and added.json()["signed_up"] is False
    assert added.json()["roles"] == []
    reinvite = await client.post(
        f"{participants_path(world)}/{added.json()['id']}/invitation",
        headers=world.coordinator.headers,
    )
    assert reinvite.status_code == 201


async def test_a_fresh_invitation_replaces_the_old_one(client, world):
    email = f"{unique_slug('lou')}@example.org"
    added = (
        await client.post(
            participants_path(world),
            json={"display_name": "Lou", "kind": "member", "email": email},
            headers=world.coordinator.headers,
        )
    ).json()
    path = f"{participants_path(world)}/{added['id']}/invitation"
    assert (await client.post(path, headers=world.member.headers)).status_code == 403
    fresh = await client.post(path, headers=world.coordinator.headers)
    assert fresh.status_code == 201
    assert fresh.json()["invitation_token"] != added["invitation_token"]
    assert fresh.json()["expires_at"]

    old = await client.post(
        "/api/v1/auth/invitations/accept",
        json={"token": added["invitation_token"], "password": NEW_PASSWORD},
    )
    assert old.status_code == 404
    new = await client.post(
        "/api/v1/auth/invitations/accept",
        json={"token": fresh.json()["invitation_token"], "password": NEW_PASSWORD},
    )
    assert new.status_code == 200

    no_email = (
        await client.post(
            participants_path(world),
            json={"display_name": "Mo", "kind": "member"},
            headers=world.coordinator.headers,
        )
    ).json()
    response = await client.post(
        f"{participants_path(world)}/{no_email['id']}/invitation",
        headers=world.coordinator.headers,
    )
    assert response.status_code == 409


async def test_the_coordinator_sets_roles(client, world):
    path = f"{participants_path(world)}/{world.other_member.participant_id}/roles"
    promoted = await client.put(
        path, json={"roles": ["member", "coordinator"]}, headers=world.coordinator.headers
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["roles"] == ["coordinator", "member"]
    # Now a coordinator: the full list, with balances.
    listed = await client.get(participants_path(world), headers=world.other_member.headers)
    assert "balance_minutes" in listed.json()["items"][0]

    demoted = await client.put(path, json={"roles": ["member"]}, headers=world.admin.headers)
    assert demoted.json()["roles"] == ["member"]
    listed = await client.get(participants_path(world), headers=world.other_member.headers)
    assert "balance_minutes" not in listed.json()["items"][0]

    assert (
        await client.put(path, json={"roles": ["coordinator"]}, headers=world.member.headers)
    ).status_code == 403
    assert (
        await client.put(path, json={"roles": ["admin"]}, headers=world.coordinator.headers)
    ).status_code == 422
    stranger = f"{participants_path(world)}/{world.stranger_member.participant_id}/roles"
    assert (
        await client.put(stranger, json={"roles": []}, headers=world.coordinator.headers)
    ).status_code == 404


async def test_concurrent_retries_of_one_add_make_one_participant(engine, world):
    # Through the service: the test client runs requests one at a time.
    access = await AuthService(engine, Settings()).access(
        await AuthService(engine, Settings()).authenticate(world.coordinator.token),
        world.timebank.slug,
    )
    data = ParticipantCreate(
        display_name="Ned", kind="member", email=f"{unique_slug('ned')}@example.org"
    )
    key = str(uuid.uuid4())
    service = Participants(engine)
    added = await asyncio.gather(*(service.add_participant(access, data, key) for _ in range(8)))
    assert len({participant.id for participant in added}) == 1
    assert sum(participant.invitation_token is not None for participant in added) == 1


async def test_ids_and_keys_out_of_range_are_validation_problems(client, world):
    path = participants_path(world)
    headers = world.coordinator.headers
    for response in (
        await client.get(f"{path}/{10**20}", headers=headers),
        await client.get(path, params={"after_id": 10**20}, headers=headers),
        await client.put(f"{path}/{10**20}/roles", json={"roles": []}, headers=headers),
        await client.post(
            path,
            json={"display_name": "Ola", "kind": "member"},
            headers={"Idempotency-Key": "k" * 256, **headers},
        ),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["type"] == PROBLEM + "validation"


async def test_two_timebanks_inviting_one_address_each_need_its_owner(client, world):
    # Timebank B invites Xena as coordinator; A's coordinator adds the same address to A.
    email = f"{unique_slug('xena')}@example.org"
    invited = await client.post(
        f"/api/v1/timebanks/{world.other_timebank.slug}/participants",
        json={"display_name": "Xena", "kind": "member", "email": email, "roles": ["coordinator"]},
        headers=world.stranger_coordinator.headers,
    )
    assert invited.status_code == 201 and invited.json()["invitation_token"]
    added = await client.post(
        f"/api/v1/timebanks/{world.timebank.slug}/participants",
        json={"display_name": "Xena", "kind": "member", "email": email},
        headers=world.coordinator.headers,
    )
    assert added.status_code == 201 and added.json()["invitation_token"]
    # Xena accepts B's with a password; A's then needs her signed in, not a second password.
    accepted = await client.post(
        "/api/v1/auth/invitations/accept",
        json={"token": invited.json()["invitation_token"], "password": "xena's own password"},
    )
    assert accepted.status_code == 200
    refused = await client.post(
        "/api/v1/auth/invitations/accept",
        json={"token": added.json()["invitation_token"], "password": "someone else's pass"},
    )
    assert refused.status_code == 409 and "sign in to accept" in refused.json()["detail"]
    joined = await client.post(
        "/api/v1/auth/invitations/accept",
        json={"token": added.json()["invitation_token"]},
        headers={"Authorization": f"Bearer {accepted.json()['token']}"},
    )
    assert joined.status_code == 200, joined.text
    assert joined.json()["participant_id"] == added.json()["id"]
    assert joined.json()["roles"] == ["member"]
