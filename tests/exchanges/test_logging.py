"""Logging an exchange: what is refused and why, limits, and a retried tap that must not count
twice (I8)."""

import asyncio
from datetime import date, timedelta

import asyncpg
import pytest
from sqlalchemy import text

from tests.exchanges.conftest import exchange_body, set_policy
from timebank.auth.schemas import Principal, TimebankAccess
from timebank.db.engine import asyncpg_dsn
from timebank.exchanges.schemas import ExchangeCreate
from timebank.exchanges.service import Exchanges


async def _exchange_count(engine, timebank_id: int) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT count(*) FROM exchanges WHERE timebank_id = :id"), {"id": timebank_id}
            )
        ).scalar_one()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"giver_id": 0}, "giver_id"),
        ({"receiver_id": 987654321}, "receiver_id"),
        ({"giver_id": 987654321}, "giver_id"),
        ({"category": "juggling"}, "category"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": 721}, "minutes"),  # above the timebank's maximum per exchange
        ({"service_date": (date.today() + timedelta(days=1)).isoformat()}, "service_date"),
        ({"service_date": "yesterday"}, "service_date"),
    ],
)
async def test_an_invalid_exchange_is_refused_naming_the_field(api, world, engine, change, field):
    ada, bea = world.member, world.other_member
    body = exchange_body(ada, bea, 60)
    body.update(change)
    if change.get("giver_id") == 987654321:
        body["receiver_id"] = ada.participant_id
    response = await api.log(ada if field != "giver_id" else world.coordinator, body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("/validation")
    assert field in [error["key"] for error in problem["errors"]], problem
    assert await _exchange_count(engine, world.timebank.id) == 0


async def test_giver_and_receiver_must_differ(api, world):
    ada = world.member
    response = await api.log(ada, exchange_body(ada, ada))
    assert response.status_code == 422
    assert response.json()["errors"][0]["key"] == "receiver_id"


async def test_a_participant_of_another_timebank_is_unknown_here(api, world):
    body = exchange_body(world.member, world.stranger_member)
    response = await api.log(world.member, body)
    assert response.status_code == 422
    assert [e["key"] for e in response.json()["errors"]] == ["receiver_id"]


async def test_over_the_floor_is_refused_as_limit_exceeded_and_nothing_is_recorded(
    api, world, engine
):
    ada, bea = world.member, world.other_member  # floor -600 minutes
    first = await api.logged(ada, exchange_body(ada, bea, 500))
    before = await api.balance(bea, bea)

    over = await api.log(ada, exchange_body(ada, bea, 101), **{"Idempotency-Key": "tap-1"})
    assert over.status_code == 409
    assert over.json()["type"].endswith("/limit-exceeded")
    assert await api.balance(bea, bea) == before
    assert await _exchange_count(engine, world.timebank.id) == 1

    # The key was not used up by the refusal: once there is room, the same request goes through.
    await api.decided(ada, first["id"], "cancel")
    again = await api.log(ada, exchange_body(ada, bea, 101), **{"Idempotency-Key": "tap-1"})
    assert again.status_code == 201
    assert (await api.verify())["ok"]


async def test_a_retry_with_the_same_key_returns_the_first_exchange(api, world, engine):
    ada, bea = world.member, world.other_member
    body = exchange_body(ada, bea, 60)
    first = await api.log(ada, body, **{"Idempotency-Key": "form-7f3a"})
    retry = await api.log(ada, body, **{"Idempotency-Key": "form-7f3a"})
    assert first.status_code == retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert await _exchange_count(engine, world.timebank.id) == 1
    assert (await api.balance(bea, bea))["pending_out_minutes"] == 60

    different = await api.log(ada, {**body, "minutes": 61}, **{"Idempotency-Key": "form-7f3a"})
    assert different.status_code == 409
    assert different.json()["type"].endswith("/idempotency-mismatch")
    assert await _exchange_count(engine, world.timebank.id) == 1

    # Keys belong to whoever sent them: Bea's "form-7f3a" is a key of her own.
    bea_logs = await api.log(bea, exchange_body(bea, ada, 15), **{"Idempotency-Key": "form-7f3a"})
    assert bea_logs.status_code == 201 and bea_logs.json()["id"] != first.json()["id"]


async def test_concurrent_taps_with_one_key_log_one_exchange(api, world, engine):
    ada, bea = world.member, world.other_member
    body = exchange_body(ada, bea, 30)
    responses = await asyncio.gather(
        *(api.log(ada, body, **{"Idempotency-Key": "double-tap"}) for _ in range(8))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _exchange_count(engine, world.timebank.id) == 1
    assert (await api.balance(bea, bea))["pending_out_minutes"] == 30


async def test_an_over_long_key_is_refused(api, world):
    response = await api.log(
        world.member,
        exchange_body(world.member, world.other_member),
        **{"Idempotency-Key": "k" * 256},
    )
    assert response.status_code == 422


async def test_concurrent_taps_with_one_key_post_one_exchange_under_automatic_approval(
    api, world, engine
):
    await set_policy(
        engine, world.timebank.id, approval_mode="automatic", confirmation_required=False
    )
    ada, bea = world.member, world.other_member
    body = exchange_body(ada, bea, 30)  # Bea logs the help she received: approved at once
    responses = await asyncio.gather(
        *(api.log(bea, body, **{"Idempotency-Key": "double-tap-auto"}) for _ in range(8))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert {r.json()["state"] for r in responses} == {"approved"}
    assert sorted(r.headers["idempotent-replayed"] for r in responses) == ["false"] + 7 * ["true"]
    assert await _exchange_count(engine, world.timebank.id) == 1
    balance = await api.balance(bea, bea)
    assert (balance["balance_minutes"], balance["pending_out_minutes"]) == (-30, 0)


async def _until_waiting_on_locks(raw, backends: int) -> None:
    for _ in range(500):
        waiting = await raw.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        if waiting >= backends:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{backends} request(s) never reached the lock")


@pytest.mark.parametrize("approval_mode", ["coordinator", "automatic"])
async def test_the_same_request_twice_at_once_waits_for_the_first_and_returns_its_exchange(
    world, engine, raw, database_url, approval_mode
):
    """Both requests look the key up before either has written: the second one's write then
    waits on the first one's claim of the key, finds it answered, writes nothing and returns
    the first one's exchange."""
    await set_policy(
        engine, world.timebank.id, approval_mode=approval_mode, confirmation_required=False
    )
    ada, bea = world.member, world.other_member
    access = TimebankAccess(
        principal=Principal(user_id=ada.user_id, email=ada.email, is_admin=False, token_id=0),
        timebank_id=world.timebank.id,
        timebank_slug=world.timebank.slug,
        roles=frozenset({"member"}),
        participant_id=ada.participant_id,
    )
    data = ExchangeCreate.model_validate(exchange_body(bea, ada, 40))  # Ada received
    exchanges = Exchanges(engine)
    database_dsn = asyncpg_dsn(database_url)
    holder = await asyncpg.connect(database_dsn)
    try:
        async with holder.transaction():
            # Hold Bea's account: the first request claims the key, then waits here.
            await holder.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", bea.account_id)
            first = asyncio.create_task(exchanges.log(access, data, "same-moment"))
            await _until_waiting_on_locks(raw, 1)
            second = asyncio.create_task(exchanges.log(access, data, "same-moment"))
            await _until_waiting_on_locks(raw, 2)  # the second waits on the key
        one, two = await first, await second
    finally:
        await holder.close()
    assert (one.replayed, two.replayed) == (False, True)
    assert two.exchange == one.exchange
    assert await _exchange_count(engine, world.timebank.id) == 1
