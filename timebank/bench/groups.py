"""The ledger benchmark's group phase: group sessions logged through the service's group path
(``Exchanges.log_group``) with a coordinator's access, in a timebank whose policy approves
every exchange at once, so each session posts all its legs in the one transaction that logs
it. A call is one session of ``legs`` legs; the phase counts legs, each one transfer posted,
so its legs/s stand beside the floor's transfers/s.

Each session draws a host and ``legs`` distinct attendees uniformly among the ledger's
participants, the host giving or receiving (one in two), each leg 1 to 120 minutes."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.auth import repository as auth_repository
from timebank.auth.schemas import Principal, TimebankAccess
from timebank.bench.floor import (
    MAX_TRANSFER_MINUTES,
    WIDE_LIMITS,
    Accounts,
    Op,
    PhaseResult,
    Timing,
    run_phase,
)
from timebank.exchanges.schemas import GroupSessionCreate, LegCreate
from timebank.exchanges.service import Exchanges

# The ledger benchmark's timebank: its wide limits, and every exchange approved as it is logged.
APPROVES_AT_ONCE = WIDE_LIMITS.model_copy(
    update={"confirmation_required": False, "approval_mode": "automatic"}
)
_PARTICIPANTS = "SELECT participant_id FROM accounts WHERE id = ANY($1::bigint[]) ORDER BY id"


@dataclass(frozen=True)
class GroupLedger:
    """The participants behind the ledger's accounts, and a coordinator who logs for them."""

    access: TimebankAccess
    participant_ids: list[int]


async def group_ledger(engine: AsyncEngine, accounts: Accounts) -> GroupLedger:
    """A coordinator of the ledger's timebank (a user with that role and no account), and the
    participants who own the ledger's accounts."""
    async with engine.begin() as conn:
        user_id = await auth_repository.insert_user(
            conn,
            email=f"bench-coordinator-{uuid.uuid4().hex[:8]}@bench.example.org",
            display_name="Bench coordinator",
            password_hash=None,
        )
        await auth_repository.grant_role(conn, accounts.timebank_id, user_id, "coordinator")
    conn = await asyncpg.connect(accounts.dsn)
    try:
        rows = await conn.fetch(_PARTICIPANTS, accounts.account_ids)
        slug = await conn.fetchval("SELECT slug FROM timebanks WHERE id = $1", accounts.timebank_id)
    finally:
        await conn.close()
    access = TimebankAccess(
        principal=Principal(user_id=user_id, email="bench-coordinator", is_admin=False, token_id=0),
        timebank_id=accounts.timebank_id,
        timebank_slug=slug,
        roles=frozenset({"coordinator"}),
    )
    return GroupLedger(access, [row["participant_id"] for row in rows])


def _session(rng: random.Random, people: list[int], legs: int) -> GroupSessionCreate:
    host, *attendees = rng.sample(people, legs + 1)
    gives = rng.random() < 0.5
    return GroupSessionCreate(
        legs=[
            LegCreate(
                giver_id=host if gives else attendee,
                receiver_id=attendee if gives else host,
                minutes=rng.randint(1, MAX_TRANSFER_MINUTES),
            )
            for attendee in attendees
        ],
        host_id=host,
        service_date=date.today(),
        category="gardening",
        description="Bench session",
    )


async def phase_groups(
    exchanges: Exchanges, target: GroupLedger, *, clients: int, legs: int, timing: Timing
) -> PhaseResult:
    """``Exchanges.log_group``: one session of ``legs`` legs per call, posted at once."""
    legs = min(legs, len(target.participant_ids) - 1)

    def worker(seed: int) -> Op:
        rng = random.Random(seed)  # noqa: S311 - load generation, not security

        async def log_one() -> int:
            data = _session(rng, target.participant_ids, legs)
            logged = await exchanges.log_group(target.access, data)
            if logged.session.state != "approved":
                raise RuntimeError(f"a session was left {logged.session.state}, not posted")
            return legs

        return log_one

    return await run_phase(
        f"d  service: Exchanges.log_group x{legs}",
        [worker(5000 + i) for i in range(clients)],
        timing,
    )
