"""How people join a timebank and hold roles, as a client and a browser see it: nobody is
linked by address (an invitation is accepted by its holder, signed out with a new account or
signed in with their own), the answers never tell whether an address exists elsewhere,
nobody changes their own roles, every change is recorded, funders and coordinators can be
staff without a participant, and names and dates must be believable."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import unique_slug
from tests.people import World, make_person
from tests.web.pages import as_person, hidden_fields, submit, text_of
from timebank.auth import repository as auth_repository
from timebank.auth.secrets import hash_token
from timebank.auth.service import AuthService
from timebank.participants.service import Participants
from timebank.participants.staff_schemas import StaffInvite
from timebank.settings import Settings

ACCEPT = "/api/v1/auth/invitations/accept"
PASSWORD = "a password of my own"
# What differs between two additions by construction, whoever the person is.
OWN_FIELDS = {
    "id",
    "account_id",
    "display_name",
    "email",
    "invitation_token",
    "invitation_expires_at",
}


def tb(slug: str) -> str:
    return f"/api/v1/timebanks/{slug}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def shape(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without what is the person's own: what an onlooker could compare."""
    return {key: value for key, value in answer.items() if key not in OWN_FIELDS}


async def add(client, slug: str, headers, email: str, roles=None, name="Xavi") -> Any:
    body: dict[str, Any] = {"display_name": name, "kind": "member", "email": email}
    if roles is not None:
        body["roles"] = roles
    return await client.post(f"{tb(slug)}/participants", json=body, headers=headers)


async def test_registering_an_address_first_gives_no_way_into_another_timebank(client, world):
    """The attack of the review: A's coordinator adds x@ to A and accepts with a password of
    their own; B's admin later adds x@ to B as coordinator. B's answer is what any unknown
    address gets, and the attacker's account has no access to B."""
    a, b = world.timebank.slug, world.other_timebank.slug
    victim = f"{unique_slug('x')}@example.org"
    planted = await add(client, a, world.coordinator.headers, victim)
    assert planted.status_code == 201
    attacker = await client.post(
        ACCEPT, json={"token": planted.json()["invitation_token"], "password": PASSWORD}
    )
    assert attacker.status_code == 200
    attacker_headers = bearer(attacker.json()["token"])

    added = await add(client, b, world.admin.headers, victim, roles=["coordinator", "member"])
    unknown = await add(
        client, b, world.admin.headers, f"{unique_slug('y')}@example.org", ["coordinator", "member"]
    )
    assert added.status_code == unknown.status_code == 201
    assert shape(added.json()) == shape(unknown.json())
    assert added.json()["signed_up"] is False and added.json()["roles"] == []
    assert added.json()["invitation_token"]

    for path in (tb(b), f"{tb(b)}/participants", f"{tb(b)}/participants/{added.json()['id']}"):
        assert (await client.get(path, headers=attacker_headers)).status_code == 404
    me = (await client.get("/api/v1/auth/me", headers=attacker_headers)).json()
    assert [membership["slug"] for membership in me["timebanks"]] == [a]
    # B's listing speaks of B's participant only: invited, not signed up, no roles.
    listed = (await client.get(f"{tb(b)}/participants", headers=world.admin.headers)).json()
    entry = next(item for item in listed["items"] if item["id"] == added.json()["id"])
    assert (entry["signed_up"], entry["roles"], entry["email"]) == (False, [], victim)

    # Signed out, B's token cannot make a second account for the address.
    refused = await client.post(
        ACCEPT, json={"token": added.json()["invitation_token"], "password": "another password"}
    )
    assert refused.status_code == 409 and "sign in to accept" in refused.json()["detail"]
    assert (await client.get(tb(b), headers=attacker_headers)).status_code == 404


async def test_a_person_signed_in_accepts_an_invitation_with_their_own_account(client, world):
    """Ada (a member of A) is invited to B as coordinator: signed in, she accepts, and takes
    part in B as its invitation says; the token then works no more."""
    b = world.other_timebank.slug
    invited = await add(client, b, world.admin.headers, world.member.email, ["coordinator"])
    token = invited.json()["invitation_token"]
    anonymous = await client.post(ACCEPT, json={"token": token})
    assert anonymous.status_code == 401
    joined = await client.post(ACCEPT, json={"token": token}, headers=world.member.headers)
    assert joined.status_code == 200, joined.text
    assert joined.json() == {
        "user_id": world.member.user_id,
        "timebank_slug": b,
        "participant_id": invited.json()["id"],
        "roles": ["coordinator"],
    }
    shown = await client.get(
        f"{tb(b)}/participants/{invited.json()['id']}", headers=world.member.headers
    )
    assert shown.status_code == 200 and shown.json()["signed_up"] is True
    again = await client.post(ACCEPT, json={"token": token}, headers=world.other_member.headers)
    assert again.status_code == 404
    # The acceptance is recorded as a role change, by whoever invited.
    changes = (await client.get(f"{tb(b)}/role-changes", headers=world.admin.headers)).json()
    assert [(c["user_id"], c["changed_by"], c["from_roles"], c["to_roles"]) for c in changes] == [
        (world.member.user_id, world.admin.user_id, [], ["coordinator"])
    ]


async def test_signed_out_acceptance_for_a_known_address_says_the_same_wherever_it_is_known(
    client, world, engine
):
    slug = world.timebank.slug
    admin = await make_person(engine, "root", is_admin=True)
    addresses = {
        "another timebank": world.stranger_member.email,
        "this timebank (staff)": world.coordinator.email,
        "a site admin": admin.email,
    }
    details = set()
    for n, email in enumerate(addresses.values()):
        added = await add(client, slug, world.coordinator.headers, email, name=f"Known {n}")
        assert added.status_code == 201, added.text
        refused = await client.post(
            ACCEPT, json={"token": added.json()["invitation_token"], "password": PASSWORD}
        )
        assert refused.status_code == 409
        details.add(refused.json()["detail"])
    assert len(details) == 1


async def test_answers_to_adding_are_the_same_whatever_the_address(client, world, engine):
    slug = world.timebank.slug
    addresses = [
        f"{unique_slug('new')}@example.org",
        world.stranger_member.email,
        world.stranger_coordinator.email,
        world.admin.email,
    ]
    answers = [
        await add(client, slug, world.coordinator.headers, email, name=f"Person {n}")
        for n, email in enumerate(addresses)
    ]
    assert {answer.status_code for answer in answers} == {201}
    assert len({repr(shape(answer.json())) for answer in answers}) == 1
    shown = [
        (
            await client.get(
                f"{tb(slug)}/participants/{answer.json()['id']}", headers=world.coordinator.headers
            )
        ).json()
        for answer in answers
    ]
    assert [(s["email"], s["signed_up"], s["roles"]) for s in shown] == [
        (email, False, []) for email in addresses
    ]
    # A fresh invitation for each, alike.
    fresh = [
        await client.post(
            f"{tb(slug)}/participants/{answer.json()['id']}/invitation",
            headers=world.coordinator.headers,
        )
        for answer in answers
    ]
    assert {response.status_code for response in fresh} == {201}
    assert len({repr(sorted(r.json().keys())) for r in fresh}) == 1
    assert {tuple(r.json()["roles"]) for r in fresh} == {("member",)}


async def test_the_page_answers_the_same_whatever_the_address(client, world: World):
    as_person(client, world.coordinator)
    path = f"/t/{world.timebank.slug}/participants/new"
    pages = []
    for email in (f"{unique_slug('page')}@example.org", world.stranger_member.email):
        form = await client.get(path)
        fields = {"key": hidden_fields(form.text)["key"], "kind": "member", "email": email}
        added = await submit(client, path, {**fields, "display_name": "Quinn"})
        assert added.status_code == 201
        words = text_of(added.text)
        pages.append(words.split("token=")[0] + words.split("token=")[1].split(" ", 1)[1])
    assert pages[0] == pages[1]


async def test_the_invitation_page_offers_signing_in_then_accepts(client, world: World):
    b = world.other_timebank.slug
    invited = await add(client, b, world.admin.headers, world.member.email, ["coordinator"])
    token = invited.json()["invitation_token"]
    as_person(client, None)
    offered = await client.get(f"/invitation?token={token}")
    assert offered.status_code == 200 and "Sign in to accept" in offered.text
    refused = await submit(
        client,
        "/invitation",
        {"token": token, "password": PASSWORD, "password_again": PASSWORD},
    )
    assert refused.status_code == 409 and "Sign in to accept it" in text_of(refused.text)
    as_person(client, world.member)
    signed_in = await client.get(f"/invitation?token={token}")
    assert world.member.email in signed_in.text and "/invitation/join" in signed_in.text
    joined = await submit(client, "/invitation/join", {"token": token})
    assert joined.status_code == 200 and joined.url.path == f"/t/{b}"
    used = await submit(client, "/invitation/join", {"token": token})
    assert used.status_code == 404 and "already used" in used.text
    as_person(client, None)
    anonymous = await submit(client, "/invitation/join", {"token": token})
    assert anonymous.url.path == "/sign-in"


async def test_an_invitation_is_accepted_once_under_a_race(engine, world):
    invited = f"{unique_slug('race')}@example.org"
    auth = AuthService(engine, Settings())
    principal = await auth.authenticate(world.coordinator.token)
    assert principal is not None
    access = await auth.access(principal, world.timebank.slug)
    invitation = await Participants(engine).invite_staff(
        access, StaffInvite(email=invited, roles=["coordinator"])
    )
    signed_in = [await auth.authenticate(p.token) for p in (world.member, world.other_member)]
    results = await asyncio.gather(
        *(auth.accept_invitation_as(p, invitation.invitation_token) for p in signed_in if p),
        auth.accept_invitation(invitation.invitation_token, PASSWORD),
        return_exceptions=True,
    )
    assert sum(not isinstance(result, Exception) for result in results) == 1
    async with engine.connect() as conn:
        accepted = (
            await conn.execute(
                text(
                    # Whoever won, the roles were granted once: one recorded change.
                    "SELECT count(*) FROM role_changes WHERE invitation_id ="
                    " (SELECT id FROM invitations WHERE token_hash = :h)"
                ),
                {"h": hash_token(invitation.invitation_token)},
            )
        ).scalar_one()
    assert accepted == 1


# --- Roles -------------------------------------------------------------------------------------


async def test_nobody_changes_their_own_roles(client, world, engine):
    slug = world.timebank.slug
    both = await make_person(
        engine, "cora", timebank=world.timebank, roles=("coordinator", "member")
    )
    own = f"{tb(slug)}/participants/{both.participant_id}/roles"
    refused = await client.put(own, json={"roles": ["member"]}, headers=both.headers)
    assert refused.status_code == 403 and "own roles" in refused.json()["detail"]
    admin = await make_person(
        engine, "adminmember", is_admin=True, timebank=world.timebank, roles=("member",)
    )
    own = f"{tb(slug)}/participants/{admin.participant_id}/roles"
    refused = await client.put(
        own, json={"roles": ["coordinator", "member"]}, headers=admin.headers
    )
    assert refused.status_code == 403
    shown = await client.get(
        f"{tb(slug)}/participants/{both.participant_id}", headers=world.coordinator.headers
    )
    assert shown.json()["roles"] == ["coordinator", "member"]
    # Another coordinator may.
    changed = await client.put(
        f"{tb(slug)}/participants/{both.participant_id}/roles",
        json={"roles": ["member"]},
        headers=world.coordinator.headers,
    )
    assert changed.status_code == 200 and changed.json()["roles"] == ["member"]


async def test_role_changes_are_recorded_and_shown_to_managers_only(client, world):
    slug = world.timebank.slug
    path = f"{tb(slug)}/participants/{world.other_member.participant_id}/roles"
    await client.put(
        path, json={"roles": ["coordinator", "member"]}, headers=world.coordinator.headers
    )
    await client.put(path, json={"roles": ["member"]}, headers=world.admin.headers)
    changes = f"{tb(slug)}/role-changes?participant_id={world.other_member.participant_id}"
    seen = await client.get(changes, headers=world.coordinator.headers)
    assert seen.status_code == 200
    assert [
        (c["user_id"], c["changed_by"], c["from_roles"], c["to_roles"], c["invitation_id"])
        for c in seen.json()
    ] == [
        (
            world.other_member.user_id,
            world.coordinator.user_id,
            ["member"],
            ["coordinator", "member"],
            None,
        ),
        (
            world.other_member.user_id,
            world.admin.user_id,
            ["coordinator", "member"],
            ["member"],
            None,
        ),
    ]
    assert all(c["changed_at"] for c in seen.json())
    for person, status in (
        (world.member, 403),
        (world.funder, 403),
        (world.stranger_coordinator, 404),
        (world.stranger_member, 404),
    ):
        assert (await client.get(changes, headers=person.headers)).status_code == status
    assert (await client.get(changes)).status_code == 401


async def test_losing_the_last_role_ends_sessions_and_tokens(client, world, engine):
    slug = world.timebank.slug
    extra = await client.post(
        "/api/v1/auth/tokens", json={"name": "script"}, headers=world.other_member.headers
    )
    script = bearer(extra.json()["token"])
    removed = await client.put(
        f"{tb(slug)}/participants/{world.other_member.participant_id}/roles",
        json={"roles": []},
        headers=world.coordinator.headers,
    )
    assert removed.status_code == 200 and removed.json()["roles"] == []
    for headers in (world.other_member.headers, script):
        assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401
    # Someone with a role left in another timebank keeps their sessions.
    both = await make_person(engine, "two", timebank=world.timebank, roles=("member",))
    async with engine.begin() as conn:
        await auth_repository.grant_role(conn, world.other_timebank.id, both.user_id, "funder")
    await client.put(
        f"{tb(slug)}/participants/{both.participant_id}/roles",
        json={"roles": []},
        headers=world.coordinator.headers,
    )
    assert (await client.get("/api/v1/auth/me", headers=both.headers)).status_code == 200


# --- Staff without a participant; funders are never participants ------------------------------


async def test_a_funder_is_invited_as_staff_and_never_as_a_participant(client, world):
    slug = world.timebank.slug
    funder_role = await add(
        client, slug, world.coordinator.headers, f"{unique_slug('f')}@example.org", ["funder"]
    )
    assert funder_role.status_code == 422 and "funder" in funder_role.text
    promoted = await client.put(
        f"{tb(slug)}/participants/{world.member.participant_id}/roles",
        json={"roles": ["member", "funder"]},
        headers=world.coordinator.headers,
    )
    assert promoted.status_code == 422 and "never takes part in exchanges" in promoted.text

    email = f"{unique_slug('fund')}@example.org"
    invited = await client.post(
        f"{tb(slug)}/staff",
        json={"email": email, "roles": ["funder"]},
        headers=world.coordinator.headers,
    )
    known = await client.post(
        f"{tb(slug)}/staff",
        json={"email": world.stranger_member.email, "roles": ["funder"]},
        headers=world.coordinator.headers,
    )
    assert invited.status_code == known.status_code == 201
    assert invited.json().keys() == known.json().keys()
    assert invited.json()["roles"] == known.json()["roles"] == ["funder"]
    accepted = await client.post(
        ACCEPT, json={"token": invited.json()["invitation_token"], "password": PASSWORD}
    )
    assert accepted.status_code == 200
    funder = bearer(accepted.json()["token"])
    report = await client.get(f"{tb(slug)}/reports/contribution", headers=funder)
    assert report.status_code == 200 and report.json()["view"] == "funder"
    assert (await client.get(f"{tb(slug)}/participants", headers=funder)).status_code == 403
    staff = (await client.get(f"{tb(slug)}/staff", headers=world.coordinator.headers)).json()
    assert {"user_id": accepted.json()["user_id"], "email": email, "roles": ["funder"]}.items() <= {
        **next(s for s in staff if s["email"] == email)
    }.items()

    # A participant's user cannot take a funder invitation.
    refused = await client.post(
        ACCEPT, json={"token": known.json()["invitation_token"]}, headers=world.member.headers
    )
    assert refused.status_code == 409 and "funder" in refused.json()["detail"]


async def test_staff_roles_are_changed_by_others_and_recorded(client, world, engine):
    slug = world.timebank.slug
    # The world's funder is staff: roles and no participant.
    path = f"{tb(slug)}/staff/{world.funder.user_id}/roles"
    assert (
        await client.put(path, json={"roles": ["funder"]}, headers=world.funder.headers)
    ).status_code == 403
    both = await client.put(
        path, json={"roles": ["coordinator", "funder"]}, headers=world.coordinator.headers
    )
    assert both.status_code == 200 and both.json()["roles"] == ["coordinator", "funder"]
    own = f"{tb(slug)}/staff/{world.funder.user_id}/roles"
    assert (
        await client.put(own, json={"roles": []}, headers=world.funder.headers)
    ).status_code == 403
    for bad in ({"roles": ["member"]}, {"roles": ["admin"]}, {"roles": "funder"}):
        assert (
            await client.put(path, json=bad, headers=world.coordinator.headers)
        ).status_code == 422
    # A participant's user is no staff member: not found here.
    member_path = f"{tb(slug)}/staff/{world.member.user_id}/roles"
    assert (
        await client.put(member_path, json={"roles": []}, headers=world.coordinator.headers)
    ).status_code == 404
    gone = await client.put(path, json={"roles": []}, headers=world.coordinator.headers)
    assert gone.status_code == 200 and gone.json() is None
    assert (await client.get("/api/v1/auth/me", headers=world.funder.headers)).status_code == 401
    changes = (
        await client.get(
            f"{tb(slug)}/role-changes?user_id={world.funder.user_id}", headers=world.admin.headers
        )
    ).json()
    assert [c["to_roles"] for c in changes] == [["coordinator", "funder"], []]


async def test_a_coordinator_with_a_participant_stays_allowed(client, world):
    slug = world.timebank.slug
    added = await add(
        client,
        slug,
        world.coordinator.headers,
        f"{unique_slug('pro')}@example.org",
        ["coordinator"],
    )
    assert added.status_code == 201 and added.json()["invited_roles"] == ["coordinator"]
    accepted = await client.post(
        ACCEPT, json={"token": added.json()["invitation_token"], "password": PASSWORD}
    )
    listed = await client.get(f"{tb(slug)}/participants", headers=bearer(accepted.json()["token"]))
    assert listed.status_code == 200 and listed.json()["view"] == "full"


# --- Names and dates ---------------------------------------------------------------------------

UNSEEN_NAMES = [
    "\u200b\u200b",  # zero-width spaces
    "\u202e",  # right-to-left override alone
    "Ada\u202egnp.exe",  # an override inside a name
    "\u2066Bea\u2069",  # isolates
    "\u200fCy",  # right-to-left mark
    "Dee\x00",  # NUL
    "Eve\x07",  # bell
    "\u3164",  # Hangul filler
    "\u00ad\u2060",  # soft hyphen, word joiner
    "\u0301",  # a combining accent with nothing under it
]


@pytest.mark.parametrize("name", UNSEEN_NAMES)
async def test_names_must_show_what_they_are(client, world, name):
    slug = world.timebank.slug
    headers = world.coordinator.headers
    for method, path, body in (
        ("POST", f"{tb(slug)}/participants", {"display_name": name, "kind": "member"}),
        ("PATCH", tb(slug), {"name": name}),
        ("POST", f"{tb(slug)}/categories", {"slug": unique_slug("c"), "name": name}),
        ("POST", "/api/v1/timebanks", {"slug": unique_slug("t"), "name": name}),
    ):
        who = world.admin.headers if path == "/api/v1/timebanks" else headers
        response = await client.request(method, path, json=body, headers=who)
        assert response.status_code == 422, (path, name, response.text)
        assert response.json()["type"].endswith("/validation")
    shown = (await client.get(tb(slug), headers=headers)).json()
    assert shown["name"] == "Riverside Timebank"


async def test_names_are_stored_composed(client, world):
    added = await client.post(
        f"{tb(world.timebank.slug)}/participants",
        json={"display_name": "  Zoe\u0308 ", "kind": "member"},
        headers=world.coordinator.headers,
    )
    assert added.status_code == 201 and added.json()["display_name"] == "Zo\u00eb"


async def test_the_page_refuses_the_names_the_api_refuses(client, world: World):
    as_person(client, world.coordinator)
    path = f"/t/{world.timebank.slug}/participants/new"
    form = await client.get(path)
    fields = {"key": hidden_fields(form.text)["key"], "kind": "member", "email": ""}
    refused = await submit(client, path, {**fields, "display_name": "\u202e\u200b"})
    assert refused.status_code == 422 and "Nothing was added" in refused.text


@pytest.mark.parametrize("joined_on", ["0001-01-01", "1899-12-31", "9999-12-31"])
async def test_joined_on_must_be_believable(client, world, joined_on):
    response = await client.post(
        f"{tb(world.timebank.slug)}/participants",
        json={"display_name": "Old Timer", "kind": "member", "joined_on": joined_on},
        headers=world.coordinator.headers,
    )
    assert response.status_code == 422, response.text
    assert "joined_on" in response.text


async def test_odd_input_to_the_new_routes_is_refused_not_a_crash(client, world):
    slug = world.timebank.slug
    headers = world.coordinator.headers
    for method, path, body in (
        ("POST", ACCEPT, {"token": "\x00" * 20, "password": PASSWORD}),
        ("POST", ACCEPT, {"token": "t" * 20 + "\x00"}),
        ("POST", ACCEPT, {"token": "x" * 10_000, "password": PASSWORD}),
        ("POST", f"{tb(slug)}/staff", {"email": "a\x00@example.org", "roles": ["funder"]}),
        ("POST", f"{tb(slug)}/staff", {"email": "a@example.org", "roles": []}),
        ("POST", f"{tb(slug)}/staff", {"email": "a" * 10_000 + "@x.org", "roles": ["funder"]}),
        ("PUT", f"{tb(slug)}/staff/{10**20}/roles", {"roles": []}),
        ("GET", f"{tb(slug)}/role-changes?participant_id=-1", None),
        ("POST", f"{tb(slug)}/participants", {"display_name": "x" * 10_000, "kind": "member"}),
    ):
        response = await client.request(method, path, json=body, headers=headers)
        assert 400 <= response.status_code < 500, (path, body, response.status_code)
    as_person(client, None)
    page = await client.get("/invitation", params={"token": "\x00"})
    assert page.status_code < 500


async def test_an_invitation_is_worth_no_more_than_its_maker(client, world):
    """A coordinator cannot keep a way back in: an invitation they made stops working when they
    stop coordinating, and nobody accepts one they made themselves (their own roles)."""
    slug = world.timebank.slug
    maker = world.coordinator

    async def staff_invitation(roles: list[str]) -> str:
        made = await client.post(
            f"{tb(slug)}/staff",
            json={"email": f"{unique_slug('s')}@example.org", "roles": roles},
            headers=maker.headers,
        )
        assert made.status_code == 201, made.text
        return made.json()["invitation_token"]

    own = await staff_invitation(["funder"])
    refused = await client.post(ACCEPT, json={"token": own}, headers=maker.headers)
    assert refused.status_code == 409 and "invitation they made" in refused.text

    kept_for_later = await staff_invitation(["coordinator"])
    demoted = await client.put(
        f"{tb(slug)}/staff/{maker.user_id}/roles", json={"roles": []}, headers=world.admin.headers
    )
    assert demoted.status_code == 200, demoted.text
    for headers in (world.member.headers, {}):
        body = (
            {"token": kept_for_later}
            if headers
            else {"token": kept_for_later, "password": PASSWORD}
        )
        late = await client.post(ACCEPT, json=body, headers=headers)
        assert late.status_code == 404, late.text
    me = (await client.get("/api/v1/auth/me", headers=world.member.headers)).json()
    assert next(t for t in me["timebanks"] if t["slug"] == slug)["roles"] == ["member"]


async def test_the_invitation_page_keeps_its_form_for_a_password_the_service_refuses(client, world):
    local = unique_slug("zed").replace("-", "")
    invited = await add(
        client, world.timebank.slug, world.coordinator.headers, f"{local}@example.org"
    )
    token = invited.json()["invitation_token"]
    client.cookies.clear()
    page = await submit(
        client, "/invitation", {"token": token, "password": local, "password_again": local}
    )
    assert page.status_code == 422, page.text
    assert 'name="password"' in page.text and "email" in page.text.lower()
