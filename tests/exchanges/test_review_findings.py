"""The holes the outside security review found in exchanges and the ledger (issue 16: findings
2, 7, 8, 13 and 14), each attacked through HTTP as the reviewer did."""

from __future__ import annotations

import asyncpg
import pytest

from tests.exchanges.conftest import exchange_body, set_policy
from tests.people import make_person
from tests.web.pages import as_person, submit


async def _set_roles(client, world, person, roles: list[str]) -> None:
    response = await client.put(
        f"/api/v1/timebanks/{world.timebank.slug}/participants/{person.participant_id}/roles",
        json={"roles": roles},
        headers=world.admin.headers,
    )
    assert response.status_code == 200, response.text


# --- 2: nobody decides on an exchange they are part of -----------------------------------------


async def test_a_coordinator_with_a_participant_logs_as_a_party_and_cannot_approve(api, world):
    sam, ada = world.staff, world.member
    logged = await api.logged(sam, exchange_body(sam, ada, 300))  # "I gave Ada 300"
    assert (logged["state"], logged["on_behalf"], logged["logged_for"]) == (
        "logged",
        False,
        "giver",
    )
    assert (await api.decide(sam, logged["id"], "approve")).status_code == 403
    assert (await api.decided(ada, logged["id"], "confirm"))["state"] == "awaiting_approval"
    assert (await api.decide(sam, logged["id"], "approve")).status_code == 403
    assert (await api.decided(world.coordinator, logged["id"], "approve"))["state"] == "approved"


async def test_dropping_ones_member_role_does_not_make_one_a_decider(api, client, world, engine):
    cal = await make_person(engine, "cal", timebank=world.timebank, roles=("coordinator", "member"))
    await _set_roles(client, world, cal, ["coordinator"])
    logged = await api.logged(cal, exchange_body(cal, world.member, 300, logged_for="giver"))
    assert logged["state"] == "logged" and logged["on_behalf"] is False
    for action in ("approve", "reject"):
        assert (await api.decide(cal, logged["id"], action)).status_code == 403
    assert (await api.balance(world.admin, world.member))["pending_out_minutes"] == 300


async def test_the_exchange_page_offers_a_party_no_decision_and_refuses_one(client, world, api):
    sam, ada = world.staff, world.member
    logged = await api.logged(ada, exchange_body(sam, ada, 60))
    await api.decided(sam, logged["id"], "confirm")
    as_person(client, sam)
    page = await client.get(f"/t/{world.timebank.slug}/exchanges/{logged['id']}")
    assert page.status_code == 200
    assert "/approve" not in page.text and "/reject" not in page.text
    queue = await client.get(f"/t/{world.timebank.slug}/queue")
    assert queue.status_code == 200, queue.text
    assert f"pick-{logged['id']}" not in queue.text
    refused = await submit(client, f"/t/{world.timebank.slug}/exchanges/{logged['id']}/approve")
    assert refused.status_code == 403
    as_person(client, None)
    assert (await api.get(world.admin, logged["id"])).json()["state"] == "awaiting_approval"


# --- 14: coordinator-only staff and funders as participants ------------------------------------


async def test_a_coordinator_only_participant_confirms_what_is_logged_against_them(api, world):
    sam, ada = world.staff, world.member
    logged = await api.logged(ada, exchange_body(ada, sam, 45))
    assert (await api.decided(sam, logged["id"], "confirm"))["state"] == "awaiting_approval"
    other = await api.logged(ada, exchange_body(ada, sam, 15))
    assert (await api.decided(sam, other["id"], "dispute", "not me"))["state"] == "disputed"


@pytest.mark.parametrize("side", ["giver_id", "receiver_id"])
async def test_an_exchange_with_a_funder_only_participant_is_refused(api, world, engine, side):
    fay = await make_person(
        engine, "fay", timebank=world.timebank, roles=("funder",), participant=True
    )
    body = exchange_body(world.coordinator, world.coordinator, 30)
    body["giver_id"], body["receiver_id"] = world.member.participant_id, fay.participant_id
    if side == "giver_id":
        body["giver_id"], body["receiver_id"] = fay.participant_id, world.member.participant_id
    response = await api.log(world.coordinator, body)
    assert response.status_code == 422, response.text
    assert [e["key"] for e in response.json()["errors"]] == [side]


async def test_a_coordinator_ends_an_exchange_nobody_can_confirm(api, client, world):
    ada, bea = world.member, world.other_member
    logged = await api.logged(ada, exchange_body(ada, bea, 120))
    # Bea's last role goes: she is signed out everywhere and can confirm nothing.
    await _set_roles(client, world, bea, [])
    assert (await api.decide(bea, logged["id"], "confirm")).status_code == 401
    cancelled = await api.decided(world.coordinator, logged["id"], "cancel")
    assert cancelled["state"] == "cancelled"
    assert (await api.balance(world.admin, bea))["pending_out_minutes"] == 0


# --- 8: nobody is debited without their confirmation -------------------------------------------


async def test_automatic_approval_without_confirmation_does_not_let_members_drain_others(
    api, world, engine
):
    await set_policy(
        engine, world.timebank.id, approval_mode="automatic", confirmation_required=False
    )
    ada, bea = world.member, world.other_member
    logged = await api.logged(ada, exchange_body(ada, bea, 600))
    assert logged["state"] == "logged"
    assert (await api.balance(bea, bea))["balance_minutes"] == 0
    assert (await api.decided(bea, logged["id"], "dispute", "never happened"))["state"] == (
        "disputed"
    )
    # What a member logs against their own balance needs nobody else.
    own = await api.logged(ada, exchange_body(bea, ada, 30))
    assert own["state"] == "approved"


# --- 7: a spent credit can be reversed; limits of one account ---------------------------------


async def _spent_credit(api, world) -> dict:
    """A wrong credit of 500 to Ada, approved, then spent: Ada is at -200 (floor -600)."""
    ada, bea, coordinator = world.member, world.other_member, world.coordinator
    credit = await api.logged(coordinator, exchange_body(ada, bea, 500))
    await api.decided(coordinator, credit["id"], "approve")
    spent = await api.logged(coordinator, exchange_body(bea, ada, 700))
    await api.decided(coordinator, spent["id"], "approve")
    return credit


async def test_a_spent_credit_is_reversed_and_the_account_flagged(api, client, world):
    ada, bea, coordinator = world.member, world.other_member, world.coordinator
    credit = await _spent_credit(api, world)
    reversed_ = await api.decided(coordinator, credit["id"], "reverse", "credited by mistake")
    assert reversed_["state"] == "reversed"
    balance = await api.balance(ada, ada)
    assert balance["balance_minutes"] == -700
    assert balance["flagged_by_reversal_id"] == reversed_["reversal_transfer_id"]
    flags = await client.get(f"{api.base}/ledger/flags", headers=coordinator.headers)
    assert [f["participant_id"] for f in flags.json()] == [ada.participant_id]
    # Nothing takes Ada further down; what brings her back is welcome.
    further = await api.log(ada, exchange_body(bea, ada, 10))
    assert further.status_code == 409 and further.json()["type"].endswith("/limit-exceeded")
    assert (await api.logged(ada, exchange_body(ada, bea, 20)))["state"] == "logged"
    assert (await api.verify())["ok"] is True
    as_person(client, coordinator)
    queue = await client.get(f"/t/{world.timebank.slug}/queue")
    assert "Outside their limits after a reversal" in queue.text
    as_person(client, None)


async def test_a_coordinator_changes_one_accounts_limits_on_the_record(api, client, world):
    ada, coordinator = world.member, world.coordinator
    credit = await _spent_credit(api, world)
    await api.decided(coordinator, credit["id"], "reverse", "credited by mistake")
    path = f"{api.base}/participants/{ada.participant_id}/limits"
    too_tight = {"floor_minutes": -650, "ceiling_minutes": 6000, "reason": "tighter"}
    refused = await client.put(path, json=too_tight, headers=coordinator.headers)
    assert refused.status_code == 409, refused.text
    assert (await api.balance(ada, ada))["floor_minutes"] == -600
    body = {"floor_minutes": -800, "ceiling_minutes": 6000, "reason": "agreed with Ada"}
    changed = await client.put(path, json=body, headers=coordinator.headers)
    assert changed.status_code == 200, changed.text
    record = changed.json()
    assert (record["floor_before"], record["floor_after"], record["changed_by_user_id"]) == (
        -600,
        -800,
        coordinator.user_id,
    )
    balance = await api.balance(ada, ada)
    assert (balance["floor_minutes"], balance["flagged_by_reversal_id"]) == (-800, None)
    # Nobody changes their own limits, and members none at all.
    own = f"{api.base}/participants/{world.staff.participant_id}/limits"
    assert (await client.put(own, json=body, headers=world.staff.headers)).status_code == 403
    assert (await client.put(path, json=body, headers=ada.headers)).status_code == 403
    assert (await api.verify())["ok"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"floor_minutes": 1, "ceiling_minutes": 10, "reason": "x"}, "floor_minutes"),
        ({"floor_minutes": -10, "ceiling_minutes": True, "reason": "x"}, "ceiling_minutes"),
        ({"floor_minutes": -10, "ceiling_minutes": 10, "reason": "  "}, "reason"),
        ({"floor_minutes": -10, "ceiling_minutes": 10, "reason": "a\x00b"}, "reason"),
        ({"floor_minutes": -(10**30), "ceiling_minutes": 10, "reason": "x"}, "floor_minutes"),
    ],
)
async def test_odd_limits_are_refused_naming_the_field(api, client, world, body, field):
    path = f"{api.base}/participants/{world.member.participant_id}/limits"
    response = await client.put(path, json=body, headers=world.coordinator.headers)
    assert response.status_code == 422, response.text
    assert field in [e["key"] for e in response.json()["errors"]]


# --- 13: loose input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"minutes": True}, "minutes"),
        ({"minutes": "30"}, "minutes"),
        ({"minutes": 30.0}, "minutes"),
        ({"minutes": 10**30}, "minutes"),
        ({"giver_id": True}, "giver_id"),
        ({"service_date": "0001-01-01"}, "service_date"),
        ({"service_date": "1999-12-31"}, "service_date"),
        ({"service_date": "9999-12-31"}, "service_date"),
        ({"service_date": 0}, "service_date"),
        ({"description": "nul\x00byte"}, "description"),
        ({"category": "garden\x00ing"}, "category"),
    ],
)
async def test_loose_input_is_refused_naming_the_field(api, world, change, field):
    body = {**exchange_body(world.member, world.other_member, 30), **change}
    response = await api.log(world.member, body)
    assert response.status_code == 422, response.text
    assert field in [e["key"] for e in response.json()["errors"]], response.json()
    listed = await api.client.get(f"{api.base}/exchanges", headers=world.admin.headers)
    assert listed.json()["items"] == []


async def test_a_nul_byte_in_a_reason_is_refused(api, world):
    logged = await api.logged(world.member, exchange_body(world.member, world.other_member, 30))
    response = await api.decide(world.other_member, logged["id"], "dispute", "no\x00pe")
    assert response.status_code == 422
    assert (await api.get(world.admin, logged["id"])).json()["state"] == "logged"


# --- 13: every number and yes/no a request carries is written as JSON writes it -------------


@pytest.mark.parametrize("loose", [True, "700", 700.0])
async def test_a_policy_number_must_be_a_json_integer(client, world, loose):
    response = await client.patch(
        f"/api/v1/timebanks/{world.timebank.slug}",
        json={"max_exchange_minutes": loose},
        headers=world.coordinator.headers,
    )
    assert response.status_code == 422, response.text
    assert [e["key"] for e in response.json()["errors"]] == ["max_exchange_minutes"]
    shown = await client.get(
        f"/api/v1/timebanks/{world.timebank.slug}", headers=world.coordinator.headers
    )
    assert shown.json()["max_exchange_minutes"] == world.timebank.policy.max_exchange_minutes


@pytest.mark.parametrize("loose", ["yes", 1, "true"])
async def test_a_policy_yes_or_no_must_be_a_json_boolean(client, world, loose):
    response = await client.patch(
        f"/api/v1/timebanks/{world.timebank.slug}",
        json={"confirmation_required": loose},
        headers=world.coordinator.headers,
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("loose", [True, "1"])
async def test_bulk_approval_ids_must_be_json_integers(api, client, world, loose):
    ada, bea = world.member, world.other_member
    await api.logged(world.coordinator, exchange_body(ada, bea, 30))
    response = await client.post(
        f"/api/v1/timebanks/{world.timebank.slug}/exchanges/approve",
        json={"ids": [loose]},
        headers=world.admin.headers,
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("loose", [True, "5", 5.0])
async def test_a_token_lifetime_must_be_a_json_integer(client, world, loose):
    response = await client.post(
        "/api/v1/auth/tokens",
        json={"name": "script", "expires_in_days": loose},
        headers=world.member.headers,
    )
    assert response.status_code == 422, response.text


async def test_a_limit_change_can_forget_its_words_but_never_its_figures(api, client, world, raw):
    """Erasure may blank who changed an account's limits and why (free text can name people);
    the figures of the record stay as written."""
    ada, coordinator = world.member, world.coordinator
    path = f"{api.base}/participants/{ada.participant_id}/limits"
    body = {"floor_minutes": -700, "ceiling_minutes": 6000, "reason": "agreed with Ada's carer"}
    record = (await client.put(path, json=body, headers=coordinator.headers)).json()
    await raw.execute(
        "UPDATE account_limit_changes SET reason = NULL, changed_by_user_id = NULL WHERE id = $1",
        record["id"],
    )
    for change in ("floor_after = -900", "reason = 'something else'", "changed_at = now()"):
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await raw.execute(
                f"UPDATE account_limit_changes SET {change} WHERE id = $1", record["id"]
            )
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await raw.execute("DELETE FROM account_limit_changes WHERE id = $1", record["id"])
    kept = await raw.fetchrow(
        "SELECT floor_before, floor_after, reason FROM account_limit_changes WHERE id = $1",
        record["id"],
    )
    assert tuple(kept) == (-600, -700, None)
