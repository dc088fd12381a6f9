"""Admins open timebanks; coordinators keep their policy, as a client of the API sees it."""

import asyncio
import uuid

from tests.conftest import unique_slug
from tests.people import make_person
from timebank.auth.schemas import Principal
from timebank.participants.schemas import TimebankCreate
from timebank.participants.service import Participants

PROBLEM = "https://timebank.dev/problems/"


def new_timebank(**policy):
    return {"slug": unique_slug("api"), "name": "Canal Side Timebank", **policy}


async def test_admin_creates_a_timebank_with_its_policy(client, engine):
    admin = await make_person(engine, "admin", is_admin=True)
    body = new_timebank(welcome_grant_minutes=120, approval_mode="automatic_unless")
    body["review_above_minutes"] = 240
    response = await client.post("/api/v1/timebanks", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["slug"] == body["slug"] and created["name"] == "Canal Side Timebank"
    assert created["welcome_grant_minutes"] == 120
    assert created["approval_mode"] == "automatic_unless"
    assert created["review_above_minutes"] == 240
    assert created["review_backdated_days"] is None
    # Unset policy fields take the defaults.
    assert created["default_floor_minutes"] == -600
    assert created["max_exchange_minutes"] == 720
    assert created["confirmation_required"] is True

    shown = await client.get(f"/api/v1/timebanks/{body['slug']}", headers=admin.headers)
    assert shown.status_code == 200 and shown.json() == created
    categories = await client.get(
        f"/api/v1/timebanks/{body['slug']}/categories", headers=admin.headers
    )
    assert "gardening" in [c["slug"] for c in categories.json()]


async def test_a_retried_create_returns_the_first_answer_and_a_changed_one_is_refused(
    client, engine
):
    admin = await make_person(engine, "admin", is_admin=True)
    key = {"Idempotency-Key": str(uuid.uuid4()), **admin.headers}
    body = new_timebank()
    first = await client.post("/api/v1/timebanks", json=body, headers=key)
    again = await client.post("/api/v1/timebanks", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()

    changed = await client.post(
        "/api/v1/timebanks", json={**body, "name": "Another Name"}, headers=key
    )
    assert changed.status_code == 409
    assert changed.json()["type"] == PROBLEM + "idempotency-mismatch"
    assert changed.headers["content-type"].startswith("application/problem+json")


async def test_a_slug_is_taken_once(client, engine):
    admin = await make_person(engine, "admin", is_admin=True)
    body = new_timebank()
    assert (await client.post("/api/v1/timebanks", json=body, headers=admin.headers)).is_success
    again = await client.post("/api/v1/timebanks", json=body, headers=admin.headers)
    assert again.status_code == 409
    assert again.json()["type"] == PROBLEM + "conflict"


async def test_only_admins_create_timebanks(client, world):
    body = new_timebank()
    assert (await client.post("/api/v1/timebanks", json=body)).status_code == 401
    for person in (world.coordinator, world.member, world.funder):
        response = await client.post("/api/v1/timebanks", json=body, headers=person.headers)
        assert response.status_code == 403
        assert response.json()["type"] == PROBLEM + "forbidden"


async def test_a_timebank_with_an_impossible_policy_is_refused(client, world):
    for policy in (
        {"default_floor_minutes": 60},
        {"default_ceiling_minutes": 100, "welcome_grant_minutes": 200},
        {"approval_mode": "whenever"},
        {"max_exchange_minutes": 0},
        {"slug": "Not A Slug"},
    ):
        response = await client.post(
            "/api/v1/timebanks", json={**new_timebank(), **policy}, headers=world.admin.headers
        )
        assert response.status_code == 422, (policy, response.text)
        assert response.json()["type"] == PROBLEM + "validation"


async def test_members_and_funders_see_their_timebank_and_strangers_do_not(client, world):
    path = f"/api/v1/timebanks/{world.timebank.slug}"
    for person in (world.member, world.funder, world.coordinator, world.admin):
        response = await client.get(path, headers=person.headers)
        assert response.status_code == 200
        assert response.json()["name"] == "Riverside Timebank"
    for person in (world.stranger_member, world.stranger_coordinator):
        assert (await client.get(path, headers=person.headers)).status_code == 404
    assert (await client.get(path)).status_code == 401


async def test_the_coordinator_changes_name_and_policy(client, world):
    path = f"/api/v1/timebanks/{world.timebank.slug}"
    response = await client.patch(
        path,
        json={
            "name": "Riverside & Canal",
            "confirmation_required": False,
            "approval_mode": "automatic_unless",
            "review_backdated_days": 30,
            "review_first_exchange": True,
            "welcome_grant_minutes": 60,
        },
        headers=world.coordinator.headers,
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["name"] == "Riverside & Canal"
    assert changed["confirmation_required"] is False
    assert changed["review_backdated_days"] == 30 and changed["review_first_exchange"] is True
    assert changed["max_exchange_minutes"] == 720  # untouched

    cleared = await client.patch(
        path, json={"review_backdated_days": None}, headers=world.admin.headers
    )
    assert cleared.status_code == 200 and cleared.json()["review_backdated_days"] is None
    assert (await client.get(path, headers=world.member.headers)).json()[
        "welcome_grant_minutes"
    ] == 60


async def test_only_its_coordinators_change_a_timebank(client, world):
    path = f"/api/v1/timebanks/{world.timebank.slug}"
    change = {"name": "Taken Over"}
    for person in (world.member, world.funder):
        assert (await client.patch(path, json=change, headers=person.headers)).status_code == 403
    for person in (world.stranger_coordinator, world.stranger_member):
        assert (await client.patch(path, json=change, headers=person.headers)).status_code == 404
    assert (await client.get(path, headers=world.member.headers)).json()["name"] != "Taken Over"


async def test_an_impossible_policy_change_is_a_validation_problem(client, world):
    path = f"/api/v1/timebanks/{world.timebank.slug}"
    headers = world.coordinator.headers
    for change in (
        {"default_ceiling_minutes": -1},
        {"default_floor_minutes": 30},
        {"welcome_grant_minutes": 7000},  # above the current ceiling of 6000
        {"default_ceiling_minutes": 50, "welcome_grant_minutes": 60},
        {"review_above_minutes": 0},
        {"name": "   "},
        {"name": None},
        {"confirmation_required": None},
        {"slug": "renamed"},
        {"max_exchange_minutes": 10**30},
    ):
        response = await client.patch(path, json=change, headers=headers)
        assert response.status_code == 422, (change, response.text)
        assert response.json()["type"] == PROBLEM + "validation"
    assert (await client.get(path, headers=headers)).json()["default_ceiling_minutes"] == 6000


async def test_concurrent_retries_of_one_create_make_one_timebank(engine):
    # Through the service: the test client runs requests one at a time.
    admin = Principal(
        user_id=(await make_person(engine, "admin", is_admin=True)).user_id,
        email="admin@example.org",
        is_admin=True,
        token_id=0,
    )
    data = TimebankCreate(**new_timebank())
    key = str(uuid.uuid4())
    service = Participants(engine)
    created = await asyncio.gather(*(service.open_timebank(admin, data, key) for _ in range(8)))
    assert len({timebank.id for timebank in created}) == 1
