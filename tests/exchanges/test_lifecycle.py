"""An exchange through its life over the API (DESIGN.md §2): logged, confirmed or disputed,
approved or rejected, cancelled, reversed; and what each step does to both balances."""

from datetime import date, timedelta

import asyncpg
import pytest

from tests.exchanges.conftest import exchange_body, set_policy
from tests.people import make_person


async def test_member_logs_other_confirms_coordinator_approves_and_balances_move(api, world):
    ada, bea, coordinator = world.member, world.other_member, world.coordinator

    logged = await api.logged(ada, exchange_body(ada, bea, 90))
    assert logged["state"] == "logged"
    assert (logged["giver_id"], logged["receiver_id"], logged["minutes"]) == (
        ada.participant_id,
        bea.participant_id,
        90,
    )
    # Reserved, not yet moved: Bea's 90 minutes are held against her floor.
    bea_pending = await api.balance(bea, bea)
    assert bea_pending["balance_minutes"] == 0 and bea_pending["pending_out_minutes"] == 90
    assert bea_pending["available_minutes"] == 600 - 90
    assert (await api.balance(ada, ada))["pending_in_minutes"] == 90

    confirmed = await api.decided(bea, logged["id"], "confirm")
    assert confirmed["state"] == "awaiting_approval"

    approved = await api.decided(coordinator, logged["id"], "approve")
    assert approved["state"] == "approved" and approved["transfer_id"] is not None

    ada_after, bea_after = await api.balance(ada, ada), await api.balance(bea, bea)
    assert (ada_after["balance_minutes"], ada_after["pending_in_minutes"]) == (90, 0)
    assert (bea_after["balance_minutes"], bea_after["pending_out_minutes"]) == (-90, 0)

    history = [(d["action"], d["actor_user_id"], d["actor_role"]) for d in approved["decisions"]]
    assert history == [
        ("log", ada.user_id, "member"),
        ("confirm", bea.user_id, "member"),
        ("approve", coordinator.user_id, "coordinator"),
    ]
    report = await api.verify()
    assert report["ok"] and report["findings"] == [] and report["transfers"] == 1

    statement = await api.client.get(
        f"{api.base}/participants/{ada.participant_id}/statement", headers=ada.headers
    )
    assert statement.status_code == 200
    [line] = statement.json()["lines"]
    assert (line["minutes"], line["balance_after"]) == (90, 90)
    assert line["memo"] == "Gardening: Weeded the front garden"


async def test_receiver_logs_and_the_giver_confirms(api, world):
    ada, bea = world.member, world.other_member
    logged = await api.logged(bea, exchange_body(ada, bea, 45))
    assert logged["logged_for"] == "receiver"
    # The one who logged it cannot confirm it themselves.
    own = await api.decide(bea, logged["id"], "confirm")
    assert own.status_code == 403
    assert (await api.decided(ada, logged["id"], "confirm"))["state"] == "awaiting_approval"


async def test_coordinator_logs_on_behalf_and_history_says_so(api, world):
    ada, bea, coordinator = world.member, world.other_member, world.coordinator
    body = exchange_body(ada, bea, 60, logged_for="receiver")
    logged = await api.logged(coordinator, body)
    # No confirmation when a coordinator logs it: it waits for approval straight away.
    assert logged["state"] == "awaiting_approval"
    assert logged["on_behalf"] is True and logged["logged_for"] == "receiver"
    assert logged["logged_by_user_id"] == coordinator.user_id
    [decision] = logged["decisions"]
    assert decision["action"] == "log" and decision["actor_role"] == "coordinator"
    assert decision["actor_user_id"] == coordinator.user_id
    assert decision["on_behalf_of"] == bea.participant_id

    seen_by_ada = await api.get(ada, logged["id"])
    assert seen_by_ada.status_code == 200
    assert seen_by_ada.json()["decisions"][0]["on_behalf_of"] == bea.participant_id


async def test_admin_logs_on_behalf_and_is_recorded_as_admin(api, world):
    logged = await api.logged(world.admin, exchange_body(world.member, world.other_member, 30))
    assert logged["on_behalf"] is True and logged["logged_for"] == "giver"
    assert logged["decisions"][0]["actor_role"] == "admin"
    assert logged["decisions"][0]["on_behalf_of"] == world.member.participant_id


async def test_without_confirmation_a_members_exchange_waits_for_a_coordinator(api, world, engine):
    await set_policy(engine, world.timebank.id, confirmation_required=False)
    # The receiver logs it (only their own balance goes down): nobody else is asked.
    logged = await api.logged(world.other_member, exchange_body(world.member, world.other_member))
    assert logged["state"] == "awaiting_approval"
    assert (await api.decide(world.member, logged["id"], "confirm")).status_code == 409


async def test_automatic_policy_approves_once_confirmed(api, world, engine):
    await set_policy(engine, world.timebank.id, approval_mode="automatic")
    ada, bea = world.member, world.other_member
    logged = await api.logged(ada, exchange_body(ada, bea, 30))
    assert logged["state"] == "logged"
    confirmed = await api.decided(bea, logged["id"], "confirm")
    assert confirmed["state"] == "approved"
    last = confirmed["decisions"][-1]
    assert (last["action"], last["actor_role"], last["actor_user_id"]) == (
        "auto_approve",
        "policy",
        None,
    )
    assert (await api.balance(ada, ada))["balance_minutes"] == 30


async def test_automatic_policy_without_confirmation_approves_at_once(api, world, engine):
    await set_policy(
        engine, world.timebank.id, approval_mode="automatic", confirmation_required=False
    )
    logged = await api.logged(
        world.other_member, exchange_body(world.member, world.other_member, 30)
    )
    assert logged["state"] == "approved"
    assert [d["action"] for d in logged["decisions"]] == ["log", "auto_approve"]
    assert (await api.balance(world.other_member, world.other_member))["balance_minutes"] == -30


async def test_a_coordinator_logged_exchange_is_approved_at_once_under_automatic(
    api, world, engine
):
    await set_policy(engine, world.timebank.id, approval_mode="automatic")
    logged = await api.logged(world.coordinator, exchange_body(world.member, world.other_member))
    assert logged["state"] == "approved"


def _days_ago(days: int) -> str:
    return (date.today() - timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("rule", "held", "passed", "reason"),
    [
        ({"review_above_minutes": 60}, {"minutes": 61}, {"minutes": 60}, "more than 60 minutes"),
        (
            {"review_backdated_days": 7},
            {"service_date": _days_ago(8)},
            {"service_date": _days_ago(7)},
            "backdated more than 7 days",
        ),
    ],
    ids=["above-minutes", "backdated"],
)
async def test_automatic_unless_holds_what_a_rule_catches(
    api, world, engine, rule, held, passed, reason
):
    await set_policy(
        engine,
        world.timebank.id,
        approval_mode="automatic_unless",
        confirmation_required=False,
        **rule,
    )
    ada, bea = world.member, world.other_member
    caught = await api.logged(bea, exchange_body(ada, bea, **{"minutes": 30, **held}))
    assert caught["state"] == "awaiting_approval"
    assert reason in caught["review_reason"]
    fine = await api.logged(bea, exchange_body(ada, bea, **{"minutes": 30, **passed}))
    assert fine["state"] == "approved" and fine["review_reason"] is None


async def test_automatic_unless_holds_exchanges_with_an_organisation(api, world, engine):
    await set_policy(
        engine,
        world.timebank.id,
        approval_mode="automatic_unless",
        confirmation_required=False,
        review_organisation=True,
    )
    care_home = await make_person(
        engine, "carehome", timebank=world.timebank, roles=("member",), kind="organisation"
    )
    ada, bea = world.member, world.other_member
    with_org = await api.logged(care_home, exchange_body(ada, care_home, 60))
    assert with_org["state"] == "awaiting_approval"
    assert "organisation" in with_org["review_reason"]
    between_members = await api.logged(bea, exchange_body(ada, bea, 60))
    assert between_members["state"] == "approved"


async def test_automatic_unless_holds_a_participants_first_exchange(api, world, engine):
    await set_policy(
        engine,
        world.timebank.id,
        approval_mode="automatic_unless",
        review_first_exchange=True,
    )
    ada, bea = world.member, world.other_member
    first = await api.logged(ada, exchange_body(ada, bea, 30))
    confirmed = await api.decided(bea, first["id"], "confirm")
    assert confirmed["state"] == "awaiting_approval"
    assert "first exchange" in confirmed["review_reason"]
    await api.decided(world.coordinator, first["id"], "approve")

    second = await api.logged(bea, exchange_body(bea, ada, 30))
    assert (await api.decided(ada, second["id"], "confirm"))["state"] == "approved"


async def test_dispute_needs_a_reason_and_a_coordinator_then_approves(api, world):
    ada, bea = world.member, world.other_member
    logged = await api.logged(ada, exchange_body(ada, bea, 120))
    no_reason = await api.decide(bea, logged["id"], "dispute")
    assert no_reason.status_code == 422
    assert no_reason.json()["type"].endswith("/validation")
    disputed = await api.decided(bea, logged["id"], "dispute", "it was one hour, not two")
    assert disputed["state"] == "disputed"
    assert disputed["decisions"][-1]["reason"] == "it was one hour, not two"

    approved = await api.decided(world.coordinator, logged["id"], "approve", "checked with both")
    assert approved["state"] == "approved"
    assert (await api.balance(ada, ada))["balance_minutes"] == 120


async def test_dispute_then_reject_releases_the_reservation(api, world):
    ada, bea = world.member, world.other_member
    logged = await api.logged(ada, exchange_body(ada, bea, 120))
    await api.decided(bea, logged["id"], "dispute", "this never happened")
    rejected = await api.decided(world.coordinator, logged["id"], "reject", "no evidence")
    assert rejected["state"] == "rejected"
    for person in (ada, bea):
        balance = await api.balance(person, person)
        assert balance["balance_minutes"] == 0
        assert balance["pending_in_minutes"] == balance["pending_out_minutes"] == 0
    assert (await api.decide(world.coordinator, logged["id"], "approve")).status_code == 409


async def test_author_cancels_and_the_other_party_cannot(api, world):
    ada, bea = world.member, world.other_member
    logged = await api.logged(ada, exchange_body(ada, bea, 30))
    refused = await api.decide(bea, logged["id"], "cancel")
    assert refused.status_code == 403 and refused.json()["type"].endswith("/forbidden")
    cancelled = await api.decided(ada, logged["id"], "cancel", "logged by mistake")
    assert cancelled["state"] == "cancelled"
    assert (await api.balance(bea, bea))["pending_out_minutes"] == 0
    again = await api.decide(ada, logged["id"], "cancel")
    assert again.status_code == 409 and again.json()["type"].endswith("/invalid-transition")


async def test_coordinator_cancels_an_exchange_awaiting_approval(api, world):
    logged = await api.logged(world.member, exchange_body(world.member, world.other_member))
    await api.decided(world.other_member, logged["id"], "confirm")
    cancelled = await api.decided(world.coordinator, logged["id"], "cancel")
    assert cancelled["state"] == "cancelled"
    assert cancelled["decisions"][-1]["actor_role"] == "coordinator"


async def test_an_approved_exchange_cannot_be_cancelled(api, world):
    logged = await api.logged(world.coordinator, exchange_body(world.member, world.other_member))
    await api.decided(world.coordinator, logged["id"], "approve")
    response = await api.decide(world.coordinator, logged["id"], "cancel")
    assert response.status_code == 409
    assert response.json()["type"].endswith("/invalid-transition")


async def test_reverse_needs_a_reason_and_moves_the_minutes_back(api, world):
    ada, bea, coordinator = world.member, world.other_member, world.coordinator
    logged = await api.logged(coordinator, exchange_body(ada, bea, 75))
    await api.decided(coordinator, logged["id"], "approve")

    no_reason = await api.decide(coordinator, logged["id"], "reverse")
    assert no_reason.status_code == 422
    blank = await api.decide(coordinator, logged["id"], "reverse", "   ")
    assert blank.status_code == 422

    reversed_ = await api.decided(coordinator, logged["id"], "reverse", "logged twice")
    assert reversed_["state"] == "reversed" and reversed_["reversal_transfer_id"] is not None
    assert reversed_["decisions"][-1]["reason"] == "logged twice"
    assert (await api.balance(ada, ada))["balance_minutes"] == 0
    assert (await api.balance(bea, bea))["balance_minutes"] == 0
    assert (await api.decide(coordinator, logged["id"], "reverse", "again")).status_code == 409
    report = await api.verify()
    assert report["ok"] and report["transfers"] == 2


async def test_only_approved_exchanges_can_be_reversed(api, world):
    logged = await api.logged(world.member, exchange_body(world.member, world.other_member))
    response = await api.decide(world.coordinator, logged["id"], "reverse", "mistake")
    assert response.status_code == 409
    assert response.json()["type"].endswith("/invalid-transition")


async def test_confirming_twice_is_an_invalid_transition(api, world):
    logged = await api.logged(world.member, exchange_body(world.member, world.other_member))
    await api.decided(world.other_member, logged["id"], "confirm")
    again = await api.decide(world.other_member, logged["id"], "confirm")
    assert again.status_code == 409
    assert again.json()["type"].endswith("/invalid-transition")
    assert again.json()["state"] == "awaiting_approval"


async def test_an_exchange_approved_as_it_is_logged_posts_once_and_holds_nothing_back(
    api, world, engine, raw
):
    await set_policy(
        engine, world.timebank.id, approval_mode="automatic", confirmation_required=False
    )
    ada, bea = world.member, world.other_member
    body = exchange_body(ada, bea, 45)  # logged by Bea, who received
    first = await api.log(bea, body, **{"Idempotency-Key": "auto-1"})
    again = await api.log(bea, body, **{"Idempotency-Key": "auto-1"})
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    logged = first.json()
    assert logged["state"] == "approved" and logged["transfer_id"] is not None
    decisions = [(d["action"], d["from_state"], d["to_state"]) for d in logged["decisions"]]
    assert decisions == [
        ("log", None, "awaiting_approval"),
        ("auto_approve", "awaiting_approval", "approved"),
    ]
    rows = await raw.fetch(
        "SELECT balance, pending_in, pending_out FROM accounts WHERE id = ANY($1::bigint[])"
        " ORDER BY id = $2 DESC",
        [ada.account_id, bea.account_id],
        ada.account_id,
    )
    assert [tuple(r) for r in rows] == [(45, 0, 0), (-45, 0, 0)]
    transfers = await raw.fetch(
        "SELECT debit_account_id, credit_account_id, minutes FROM transfers WHERE id = $1",
        logged["transfer_id"],
    )
    assert [tuple(t) for t in transfers] == [(bea.account_id, ada.account_id, 45)]


async def test_the_database_refuses_an_exchange_inserted_as_approved_without_its_own_transfer(
    api, world, engine, raw, ledger
):
    await set_policy(
        engine, world.timebank.id, approval_mode="automatic", confirmation_required=False
    )
    ada, bea = world.member, world.other_member
    posted = await api.logged(bea, exchange_body(ada, bea, 45))
    exchanges_before = await raw.fetchval("SELECT count(*) FROM exchanges")
    insert = (
        "INSERT INTO exchanges (timebank_id, giver_id, receiver_id, minutes, service_date,"
        " category_id, state, logged_for, transfer_id)"
        " SELECT timebank_id, $2, $3, $4, service_date, category_id, 'approved', 'giver', $5"
        " FROM exchanges WHERE id = $1"
    )
    forged = [
        # another exchange's transfer (already linked to it), of other minutes
        (ada.participant_id, bea.participant_id, 60),
        # the right minutes, but the parties the other way round
        (bea.participant_id, ada.participant_id, 45),
    ]
    for giver_id, receiver_id, minutes in forged:
        with pytest.raises(asyncpg.PostgresError) as refused:
            await raw.execute(
                insert, posted["id"], giver_id, receiver_id, minutes, posted["transfer_id"]
            )
        assert refused.value.sqlstate == "TBIN0", refused.value
    # A direct transfer of the right shape, posted earlier by another transaction (and since
    # reversed): not this exchange's own.
    direct = await ledger.post_transfer(world.timebank.id, bea.account_id, ada.account_id, 45)
    for reversed_first in (False, True):
        if reversed_first:
            await ledger.reverse(world.timebank.id, direct.transfer.id, reason="a mistake")
        with pytest.raises(asyncpg.PostgresError) as refused:
            await raw.execute(
                insert, posted["id"], ada.participant_id, bea.participant_id, 45, direct.transfer.id
            )
        assert refused.value.sqlstate == "TBIN0", refused.value
    with pytest.raises(asyncpg.PostgresError) as refused:  # no transfer at all
        await raw.execute(insert, posted["id"], ada.participant_id, bea.participant_id, 45, None)
    assert refused.value.sqlstate == "TBIN0", refused.value
    assert await raw.fetchval("SELECT count(*) FROM exchanges") == exchanges_before
