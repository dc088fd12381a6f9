"""Approving many at once, and many approving at once: one transfer per exchange, always (I6)."""

import asyncio

from sqlalchemy import text

from tests.exchanges.conftest import exchange_body


async def _transfers_of(engine, timebank_id: int) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT count(*) FROM transfers WHERE timebank_id = :id"), {"id": timebank_id}
            )
        ).scalar_one()


async def test_twenty_concurrent_approvals_post_exactly_one_transfer(api, world, engine):
    ada, bea = world.member, world.other_member
    logged = await api.logged(world.coordinator, exchange_body(ada, bea, 90))
    approvers = [world.coordinator, world.admin] * 10

    responses = await asyncio.gather(
        *(api.decide(person, logged["id"], "approve") for person in approvers)
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 19, [r.text for r in responses if r.status_code >= 500]
    assert all(
        r.json()["type"].endswith("/invalid-transition") for r in responses if r.status_code == 409
    )
    assert await _transfers_of(engine, world.timebank.id) == 1
    assert (await api.balance(ada, ada))["balance_minutes"] == 90
    assert (await api.balance(bea, bea))["balance_minutes"] == -90
    detail = (await api.get(ada, logged["id"])).json()
    assert [d["action"] for d in detail["decisions"]] == ["log", "approve"]
    assert (await api.verify())["ok"]


async def test_concurrent_approve_and_reject_leave_one_outcome(api, world, engine):
    logged = await api.logged(world.coordinator, exchange_body(world.member, world.other_member))
    responses = await asyncio.gather(
        *(
            api.decide(world.coordinator, logged["id"], action, "decided")
            for action in ["approve", "reject", "cancel"] * 4
        )
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 11
    state = (await api.get(world.member, logged["id"])).json()["state"]
    assert state in {"approved", "rejected", "cancelled"}
    assert await _transfers_of(engine, world.timebank.id) == (1 if state == "approved" else 0)
    assert (await api.verify())["ok"]


async def test_bulk_approve_reports_each_exchange_on_its_own(api, world, engine):
    ada, bea, coordinator = world.member, world.other_member, world.coordinator
    ready = [await api.logged(coordinator, exchange_body(ada, bea, 20)) for _ in range(3)]
    unconfirmed = await api.logged(ada, exchange_body(ada, bea, 20))
    response = await api.client.post(
        f"{api.base}/exchanges/approve",
        json={"ids": [ready[0]["id"], unconfirmed["id"], ready[1]["id"], 987654, ready[2]["id"]]},
        headers=coordinator.headers,
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["id"] for r in results] == [
        ready[0]["id"],
        unconfirmed["id"],
        ready[1]["id"],
        987654,
        ready[2]["id"],
    ]
    assert [r["state"] for r in results] == ["approved", "logged", "approved", None, "approved"]
    assert results[1]["error"]["type"].endswith("/invalid-transition")
    assert results[3]["error"]["status"] == 404
    assert all(results[i]["error"] is None for i in (0, 2, 4))
    assert await _transfers_of(engine, world.timebank.id) == 3
    assert (await api.balance(ada, ada))["balance_minutes"] == 60


async def test_members_cannot_bulk_approve(api, world):
    logged = await api.logged(world.coordinator, exchange_body(world.member, world.other_member))
    response = await api.client.post(
        f"{api.base}/exchanges/approve", json={"ids": [logged["id"]]}, headers=world.member.headers
    )
    assert response.status_code == 403
    assert (await api.get(world.member, logged["id"])).json()["state"] == "awaiting_approval"
