"""The load benchmark's timebanks and the people who use them: members and coordinators with
API tokens of their own, and the steps each kind of simulated client takes."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.auth import invitations_repository
from timebank.auth import repository as auth_repository
from timebank.auth.secrets import new_token
from timebank.bench.http_client import Connection, Response
from timebank.bench.load_phase import Client, Recorder
from timebank.participants.schemas import TimebankPolicy, TimebankRecord
from timebank.participants.service import Participants

AUTO_APPROVE = TimebankPolicy(
    default_floor_minutes=-10_000_000,
    default_ceiling_minutes=10_000_000,
    max_exchange_minutes=480,
    confirmation_required=False,
    approval_mode="automatic",
)
COORDINATOR_APPROVAL = AUTO_APPROVE.model_copy(
    update={"confirmation_required": True, "approval_mode": "coordinator"}
)
# The auto-approve mix: one step in ten reads a balance, one in fifty the report, the rest log.
BALANCE_SHARE = 0.10
REPORT_SHARE = 0.02
LOG_SHARE = 1 - BALANCE_SHARE - REPORT_SHARE


@dataclass
class Member:
    participant_id: int
    headers: dict[str, str]


@dataclass
class Bank:
    slug: str
    members: list[Member]
    coordinators: list[dict[str, str]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------
# Building the timebanks
# ------------------------------------------------------------------------------------------


async def _person(
    engine: AsyncEngine, timebank: TimebankRecord, label: str, role: str, participant_id: int | None
) -> dict[str, str]:
    """A user with an API token and ``role`` in the timebank (linked to the participant)."""
    secret, token_hash = new_token()
    async with engine.begin() as conn:
        user_id = await auth_repository.insert_user(
            conn,
            email=f"{label}-{uuid.uuid4().hex[:8]}@load.example.org",
            display_name=label,
            password_hash=None,  # signs in with its token only
        )
        await auth_repository.insert_token(
            conn,
            user_id=user_id,
            kind="api",
            name="load",
            token_hash=token_hash,
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
        await auth_repository.grant_role(conn, timebank.id, user_id, role)
        if participant_id is not None:
            await invitations_repository.link_participant(
                conn, timebank.id, participant_id, user_id
            )
    return {"Authorization": f"Bearer {secret}"}


async def build_bank(
    engine: AsyncEngine, slug: str, policy: TimebankPolicy, members: int, coordinators: int
) -> Bank:
    participants = Participants(engine)
    timebank = await participants.create_timebank(slug, f"Load {slug}", policy)
    gate = asyncio.Semaphore(8)

    async def member(i: int) -> Member:
        async with gate:
            participant = await participants.enrol(timebank, "member", f"Member {i}")
            headers = await _person(engine, timebank, f"m{i}", "member", participant.id)
            return Member(participant.id, headers)

    async def coordinator(i: int) -> dict[str, str]:
        async with gate:
            return await _person(engine, timebank, f"c{i}", "coordinator", None)

    bank = Bank(slug, list(await asyncio.gather(*(member(i) for i in range(members)))))
    bank.coordinators = list(await asyncio.gather(*(coordinator(i) for i in range(coordinators))))
    return bank


# ------------------------------------------------------------------------------------------
# The simulated clients
# ------------------------------------------------------------------------------------------


def _exchange(giver: Member, receiver: Member, rng: random.Random) -> dict[str, Any]:
    return {
        "giver_id": giver.participant_id,
        "receiver_id": receiver.participant_id,
        "minutes": rng.randint(15, 240),
        "service_date": (date.today() - timedelta(days=rng.randint(0, 20))).isoformat(),
        "category": rng.choice(("gardening", "befriending", "lifts", "cooking")),
        "description": "Load test",
    }


def _two(members: list[Member], rng: random.Random) -> tuple[Member, Member]:
    giver, receiver = rng.sample(members, 2)
    return giver, receiver


def _key(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Idempotency-Key": uuid.uuid4().hex}


def auto_approve_client(bank: Bank) -> Client:
    base = f"/api/v1/timebanks/{bank.slug}"

    async def step(http: Connection, rec: Recorder, rng: random.Random, due: float | None) -> None:
        giver, receiver = _two(bank.members, rng)
        roll = rng.random()
        if roll < BALANCE_SHARE:
            await rec.call(
                http,
                "GET",
                f"{base}/participants/{giver.participant_id}/balance",
                giver.headers,
                kind="balance",
                due=due,
            )
        elif roll < BALANCE_SHARE + REPORT_SHARE:
            await rec.call(
                http,
                "GET",
                f"{base}/reports/reciprocity",
                giver.headers,
                kind="report",
                due=due,
            )
        else:
            response = await _log(http, rec, base, giver, receiver, rng, due)
            if response is not None and response.json()["state"] == "approved":
                rec.posted()

    return step


async def _log(
    http: Connection,
    rec: Recorder,
    base: str,
    giver: Member,
    receiver: Member,
    rng: random.Random,
    due: float | None,
) -> Response | None:
    """The receiver logs the help they had from ``giver``, with an idempotency key of its own
    (a receiver's own log needs no confirmation where the policy asks none; a giver's would
    wait for the receiver, since it takes minutes from them)."""
    return await rec.call(
        http,
        "POST",
        f"{base}/exchanges",
        _key(receiver.headers),
        _exchange(giver, receiver, rng),
        kind="log",
        due=due,
    )


def coordinator_approval_client(bank: Bank) -> Client:
    base = f"/api/v1/timebanks/{bank.slug}"

    async def step(http: Connection, rec: Recorder, rng: random.Random, due: float | None) -> None:
        coordinator = rng.choice(bank.coordinators)
        if rng.random() < 0.02:
            await rec.call(
                http, "GET", f"{base}/reports/contribution", coordinator, kind="report", due=due
            )
            return
        giver, receiver = _two(bank.members, rng)
        logged = await _log(http, rec, base, giver, receiver, rng, due)
        if logged is None:
            return
        exchange = f"{base}/exchanges/{logged.json()['id']}"
        confirmed = await rec.call(
            http, "POST", f"{exchange}/confirm", giver.headers, {}, kind="confirm"
        )
        if confirmed is None:
            return
        approved = await rec.call(
            http, "POST", f"{exchange}/approve", coordinator, {}, kind="approve"
        )
        if approved is not None and approved.json()["state"] == "approved":
            rec.posted()

    return step
