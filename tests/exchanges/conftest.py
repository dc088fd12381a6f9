"""Helpers for the exchanges API tests: the timebank's policy set straight in the database, and
exchanges logged the way a client logs them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.people import Person, World


async def set_policy(engine: AsyncEngine, timebank_id: int, **columns: Any) -> None:
    """Set policy columns of ``timebanks`` (confirmation_required, approval_mode, review_*)."""
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    async with engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE timebanks SET {assignments} WHERE id = :id"),
            {**columns, "id": timebank_id},
        )


def exchange_body(giver: Person, receiver: Person, minutes: int = 90, **fields: Any) -> dict:
    return {
        "giver_id": giver.participant_id,
        "receiver_id": receiver.participant_id,
        "minutes": minutes,
        "service_date": (date.today() - timedelta(days=1)).isoformat(),
        "category": "gardening",
        "description": "Weeded the front garden",
        **fields,
    }


class Api:
    """The exchange routes of one timebank, as a client calls them."""

    def __init__(self, client: AsyncTestClient, world: World) -> None:
        self.client = client
        self.world = world
        self.base = f"/api/v1/timebanks/{world.timebank.slug}"

    async def log(self, by: Person, body: dict, **headers: str):
        return await self.client.post(
            f"{self.base}/exchanges", json=body, headers={**by.headers, **headers}
        )

    async def logged(self, by: Person, body: dict) -> dict:
        response = await self.log(by, body)
        assert response.status_code == 201, response.text
        return response.json()

    async def decide(self, by: Person, exchange_id: int, action: str, reason: str | None = None):
        body = {"reason": reason} if reason is not None else {}
        return await self.client.post(
            f"{self.base}/exchanges/{exchange_id}/{action}", json=body, headers=by.headers
        )

    async def decided(self, by: Person, exchange_id: int, action: str, reason: str | None = None):
        response = await self.decide(by, exchange_id, action, reason)
        assert response.status_code == 200, response.text
        return response.json()

    async def get(self, by: Person, exchange_id: int):
        return await self.client.get(f"{self.base}/exchanges/{exchange_id}", headers=by.headers)

    async def balance(self, by: Person, of: Person) -> dict:
        response = await self.client.get(
            f"{self.base}/participants/{of.participant_id}/balance", headers=by.headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def verify(self) -> dict:
        response = await self.client.get(
            f"{self.base}/ledger/verify", headers=self.world.coordinator.headers
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def api(client: AsyncTestClient, world: World) -> Api:
    return Api(client, world)
