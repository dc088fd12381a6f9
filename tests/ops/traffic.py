"""Members logging exchanges over HTTP with idempotency keys, as fast as they are answered,
recording every answer: for the crash and database fault tests, which then check that every
acknowledged exchange is in the ledger exactly once."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import unique_slug
from tests.people import Person, make_person
from timebank.participants.schemas import TimebankPolicy, TimebankRecord
from timebank.participants.service import Participants

MAX_ATTEMPTS = 300  # 30 s and more of trying one request again

AUTO_APPROVE = TimebankPolicy(
    default_floor_minutes=-1_000_000,
    default_ceiling_minutes=1_000_000,
    max_exchange_minutes=480,
    confirmation_required=False,
    approval_mode="automatic",
)


@dataclass
class Bank:
    """An auto-approving timebank and its members."""

    timebank: TimebankRecord
    members: list[Person]

    @property
    def exchanges_path(self) -> str:
        return f"/api/v1/timebanks/{self.timebank.slug}/exchanges"


async def make_bank(engine: AsyncEngine, members: int) -> Bank:
    timebank = await Participants(engine).create_timebank(
        unique_slug("ops"), "Operations Timebank", AUTO_APPROVE
    )
    people = [
        await make_person(engine, f"m{i}", timebank=timebank, roles=("member",))
        for i in range(members)
    ]
    return Bank(timebank, people)


@dataclass
class Sent:
    """One request, as the client knows it: its key and body, who sent it, and the answer."""

    key: str
    body: dict
    sender: Person
    started: float
    seconds: float = 0.0
    status: int | None = None  # None: no answer (connection refused or cut)
    exchange_id: int | None = None
    retry_after: str | None = None
    problem_type: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Traffic:
    bank: Bank
    base_url: str
    sent: list[Sent] = field(default_factory=list)
    running: bool = True
    _keys: itertools.count = field(default_factory=itertools.count)

    def body_for(self, sender: Person, rng: random.Random) -> tuple[dict, Person]:
        # The sender received the help: a member's own log debits only themselves, so it is
        # approved at once under AUTO_APPROVE (one that debits another waits for them).
        giver = rng.choice([m for m in self.bank.members if m is not sender])
        body = {
            "giver_id": giver.participant_id,
            "receiver_id": sender.participant_id,
            "minutes": rng.randint(1, 240),
            "service_date": (date.today() - timedelta(days=1)).isoformat(),
            "category": "gardening",
            "description": "Load under faults",
        }
        return body, sender

    async def send(self, http: httpx.AsyncClient, sent: Sent) -> Sent:
        try:
            response = await http.post(
                self.bank.exchanges_path,
                json=sent.body,
                headers={**sent.sender.headers, "Idempotency-Key": sent.key},
            )
        except httpx.TransportError:
            sent.status = None
        else:
            sent.status = response.status_code
            sent.retry_after = response.headers.get("retry-after")
            if response.headers.get("content-type", "").startswith("application/problem+json"):
                sent.problem_type = response.json().get("type")
            elif sent.acknowledged:
                sent.exchange_id = response.json()["id"]
        sent.seconds = time.monotonic() - sent.started
        return sent

    async def client(self, index: int, patience: float) -> None:
        """One member logging exchanges, one after another, until told to stop. Like a real
        client it sends a request again, with the same key, until it gets a 2xx or 4xx answer
        (every attempt is recorded)."""
        rng = random.Random(index)
        giver = self.bank.members[index % len(self.bank.members)]
        async with httpx.AsyncClient(base_url=self.base_url, timeout=patience) as http:
            while self.running:
                body, sender = self.body_for(giver, rng)
                key = f"{uuid.uuid4().hex}-{next(self._keys)}"
                for _ in range(MAX_ATTEMPTS):
                    sent = Sent(key, body, sender, time.monotonic())
                    self.sent.append(sent)
                    await self.send(http, sent)
                    if sent.status is not None and sent.status < 500:
                        break
                    await asyncio.sleep(0.1)  # back off a little, then try again

    def requests(self) -> list[Sent]:
        """Each request once (its last attempt), in the order they were first made."""
        last: dict[str, Sent] = {}
        for sent in self.sent:
            last[sent.key] = sent
        return list(last.values())

    def acknowledged(self) -> dict[str, int]:
        """Key -> exchange id of every request acknowledged with 2xx (at any attempt)."""
        return {s.key: s.exchange_id for s in self.sent if s.acknowledged and s.exchange_id}

    async def replay(
        self, originals: list[Sent] | None = None, *, parallel: int = 8, patience: float = 30
    ) -> list[Sent]:
        """Send requests again (every one by default), each with its own key and body."""
        originals = self.sent if originals is None else originals
        again = [Sent(s.key, s.body, s.sender, 0.0) for s in originals]
        queue = iter(again)

        async def worker(http: httpx.AsyncClient) -> None:
            for retry in queue:
                retry.started = time.monotonic()
                await self.send(http, retry)

        async with httpx.AsyncClient(base_url=self.base_url, timeout=patience) as http:
            await asyncio.gather(*(worker(http) for _ in range(parallel)))
        return again


async def exchanges_of(engine: AsyncEngine, timebank_id: int) -> dict[int, str]:
    """Every exchange of the timebank in the database: id -> state."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id, state FROM exchanges WHERE timebank_id = :id"), {"id": timebank_id}
        )
        return {row.id: row.state for row in rows}
