"""Who may do what with exchanges, balances and the audit (DESIGN.md §4), checked on the server
for every route: members act on their own exchanges, coordinators decide, funders see none of
it, and people of another timebank are told this one's routes do not exist."""

import json
import re

import pytest
from sqlalchemy import text

from tests.exchanges.conftest import exchange_body
from tests.people import PASSWORD, make_person

ACTIONS = ("confirm", "dispute", "approve", "reject", "cancel", "reverse")


def _routes_of_this_feature(app) -> list[tuple[str, str]]:
    """(method, path template) of every exchange, balance, statement and audit route, read
    from the router so that a new route cannot be forgotten here."""
    wanted = re.compile(
        r"^/api/v1/timebanks/\{slug:str\}/(exchanges|ledger/|participants/\{participant_id:int\}/"
        r"(balance|statement))"
    )
    found = []
    for route in app.routes:
        if wanted.match(route.path):
            found.extend((method, route.path) for method in route.methods if method != "OPTIONS")
    return sorted(found)


def _fill(path: str, slug: str, exchange_id: int, participant_id: int) -> str:
    return (
        path.replace("{slug:str}", slug)
        .replace("{exchange_id:int}", str(exchange_id))
        .replace("{participant_id:int}", str(participant_id))
    )


def _body(method: str, path: str, world, exchange_id: int) -> dict | None:
    if method != "POST":
        return None
    if path.endswith("/exchanges"):
        return exchange_body(world.member, world.other_member, 30)
    if path.endswith("/exchanges/approve"):
        return {"ids": [exchange_id]}
    return {"reason": "because"}


async def test_the_routes_are_all_found(client):
    routes = _routes_of_this_feature(client.app)
    assert len(routes) == 14, routes


async def test_a_member_of_another_timebank_gets_404_on_every_route(api, world, client):
    logged = await api.logged(world.member, exchange_body(world.member, world.other_member))
    for method, template in _routes_of_this_feature(client.app):
        for stranger in (world.stranger_member, world.stranger_coordinator):
            path = _fill(template, world.timebank.slug, logged["id"], world.member.participant_id)
            response = await client.request(
                method,
                path,
                json=_body(method, template, world, logged["id"]),
                headers=stranger.headers,
            )
            assert response.status_code == 404, (method, path, response.text)
    # Nothing changed on their behalf.
    after = await api.get(world.member, logged["id"])
    assert after.json()["state"] == "logged" and len(after.json()["decisions"]) == 1


async def test_a_funder_gets_403_on_every_route(api, world, client):
    logged = await api.logged(world.member, exchange_body(world.member, world.other_member))
    for method, template in _routes_of_this_feature(client.app):
        path = _fill(template, world.timebank.slug, logged["id"], world.member.participant_id)
        response = await client.request(
            method,
            path,
            json=_body(method, template, world, logged["id"]),
            headers=world.funder.headers,
        )
        assert response.status_code == 403, (method, path, response.text)


async def test_anonymous_callers_get_401(api, world, client):
    for method, template in _routes_of_this_feature(client.app):
        path = _fill(template, world.timebank.slug, 1, world.member.participant_id)
        response = await client.request(method, path, json=_body(method, template, world, 1))
        assert response.status_code == 401, (method, path, response.text)


async def test_a_member_approving_their_own_exchange_gets_403(api, world):
    ada, bea = world.member, world.other_member
    logged = await api.logged(ada, exchange_body(ada, bea))
    await api.decided(bea, logged["id"], "confirm")
    for person in (ada, bea):
        for action in ("approve", "reject"):
            response = await api.decide(person, logged["id"], action)
            assert response.status_code == 403, (person, action)
            assert response.json()["type"].endswith("/forbidden")
    assert (await api.get(ada, logged["id"])).json()["state"] == "awaiting_approval"


async def test_a_coordinator_who_is_party_cannot_approve_it(api, world, engine):
    both = await make_person(
        engine, "coord-member", timebank=world.timebank, roles=("member", "coordinator")
    )
    logged = await api.logged(both, exchange_body(both, world.member, 30))
    assert logged["on_behalf"] is False and logged["state"] == "logged"
    await api.decided(world.member, logged["id"], "confirm")
    response = await api.decide(both, logged["id"], "approve")
    assert response.status_code == 403
    assert (await api.decided(world.coordinator, logged["id"], "approve"))["state"] == "approved"


async def test_a_member_cannot_log_an_exchange_they_are_not_party_to(api, world, engine):
    cy = await make_person(engine, "cy", timebank=world.timebank, roles=("member",))
    response = await api.log(cy, exchange_body(world.member, world.other_member))
    assert response.status_code == 403
    assert response.json()["type"].endswith("/forbidden")


async def test_a_member_sees_only_exchanges_they_are_party_to(api, world, engine):
    cy = await make_person(engine, "cy", timebank=world.timebank, roles=("member",))
    theirs = await api.logged(world.member, exchange_body(world.member, world.other_member))
    mine = await api.logged(cy, exchange_body(cy, world.member))

    listed = await api.client.get(f"{api.base}/exchanges", headers=cy.headers)
    assert [e["id"] for e in listed.json()["items"]] == [mine["id"]]
    assert (await api.get(cy, theirs["id"])).status_code == 404
    for action in ("confirm", "dispute", "cancel"):
        response = await api.decide(cy, theirs["id"], action, "not mine")
        assert response.status_code == 404, action

    everything = await api.client.get(f"{api.base}/exchanges", headers=world.coordinator.headers)
    assert {e["id"] for e in everything.json()["items"]} == {theirs["id"], mine["id"]}


async def test_coordinators_do_not_confirm_or_dispute(api, world):
    logged = await api.logged(world.member, exchange_body(world.member, world.other_member))
    for action in ("confirm", "dispute"):
        response = await api.decide(world.coordinator, logged["id"], action, "for them")
        assert response.status_code == 403, action


@pytest.mark.parametrize("who", ["member", "other_member"])
async def test_members_see_their_own_balance_only(api, world, who):
    person = world.people[who]
    other = world.other_member if who == "member" else world.member
    own = await api.client.get(
        f"{api.base}/participants/{person.participant_id}/balance", headers=person.headers
    )
    assert own.status_code == 200
    for route in ("balance", "statement"):
        response = await api.client.get(
            f"{api.base}/participants/{other.participant_id}/{route}", headers=person.headers
        )
        assert response.status_code == 403, route


async def test_coordinators_see_any_balance_in_their_timebank_but_not_elsewhere(api, world):
    for person in (world.member, world.other_member):
        response = await api.client.get(
            f"{api.base}/participants/{person.participant_id}/balance",
            headers=world.coordinator.headers,
        )
        assert response.status_code == 200
    elsewhere = world.stranger_member.participant_id
    for route in ("balance", "statement"):
        response = await api.client.get(
            f"{api.base}/participants/{elsewhere}/{route}", headers=world.coordinator.headers
        )
        assert response.status_code == 404, route


async def test_members_cannot_audit_the_ledger(api, world):
    response = await api.client.get(f"{api.base}/ledger/verify", headers=world.member.headers)
    assert response.status_code == 403
    by_admin = await api.client.get(f"{api.base}/ledger/verify", headers=world.admin.headers)
    assert by_admin.status_code == 200 and by_admin.json()["ok"] is True


async def test_logging_looks_its_caller_up_itself_and_refuses_as_every_route_does(
    api, world, client, engine
):
    """The log route reads who is calling in the statement that reads what logging needs (one
    round trip fewer on the busiest route): the refusals must be those of every other route,
    and a refused log must write nothing."""
    ada, bea = world.member, world.other_member
    path = f"/api/v1/timebanks/{world.timebank.slug}/exchanges"

    async def count() -> int:
        async with engine.connect() as conn:
            return (
                await conn.execute(
                    text("SELECT count(*) FROM exchanges WHERE timebank_id = :id"),
                    {"id": world.timebank.id},
                )
            ).scalar_one()

    before = await count()
    # A token that was revoked signs nobody in.
    created = await client.post("/api/v1/auth/tokens", json={"name": "phone"}, headers=ada.headers)
    revoked = {"Authorization": f"Bearer {created.json()['token']}"}
    accepted = await client.post(path, json=exchange_body(ada, bea), headers=revoked)
    assert accepted.status_code == 201, accepted.text
    await client.delete(f"/api/v1/auth/tokens/{created.json()['id']}", headers=ada.headers)
    refused = await client.post(path, json=exchange_body(ada, bea), headers=revoked)
    assert refused.status_code == 401, refused.text
    # A timebank that does not exist is not found, for someone signed in.
    missing = await client.post(
        "/api/v1/timebanks/no-such-timebank/exchanges",
        json=exchange_body(ada, bea),
        headers=ada.headers,
    )
    assert missing.status_code == 404, missing.text
    # A session cookie must come with JSON, not a body a form could send across sites.
    login = await client.post("/api/v1/auth/login", json={"email": ada.email, "password": PASSWORD})
    assert login.status_code == 200
    forged = await client.post(
        path, content=json.dumps(exchange_body(ada, bea)), headers={"content-type": "text/plain"}
    )
    assert forged.status_code == 415, forged.text
    assert "application/json" in forged.json()["detail"]
    client.cookies.clear()
    # Someone whose part in the timebank has ended is told it does not exist, even when they
    # send again an idempotency key they logged with while they were a member.
    body = exchange_body(ada, bea)
    keyed = await api.log(ada, body, **{"Idempotency-Key": "left-and-back"})
    assert keyed.status_code == 201, keyed.text
    async with engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM timebank_roles WHERE timebank_id = :tb AND user_id = :user"),
            {"tb": world.timebank.id, "user": ada.user_id},
        )
    for again in (body, exchange_body(ada, bea, 45)):  # the same request, and another
        gone = await api.log(ada, again, **{"Idempotency-Key": "left-and-back"})
        assert gone.status_code == 404, gone.text
    assert await count() == before + 2  # the two logs that were accepted, and nothing else
