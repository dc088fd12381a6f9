"""Group sessions logged at once over the same few people with tight limits (DESIGN.md §3, §6):
sixteen coordinators' clients race sessions of 3 to 8 legs through the service, some posted at
once and some reserved for review, some sent again under their key after the answer and some
sent twice at once under one key. Afterwards the ledger audit finds nothing, no account is
outside its limits, every acknowledged session is stored once with every leg moved once, every
refusal wrote nothing and named someone who really was at their limit, and every replay
answered with the session first logged."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import unique_slug
from tests.exchanges.conftest import set_policy
from tests.people import make_person
from timebank.auth.schemas import Principal, TimebankAccess
from timebank.db.engine import sqlalchemy_url
from timebank.errors import LimitExceeded
from timebank.exchanges.schemas import GroupSessionCreate, LegCreate
from timebank.exchanges.service import Exchanges
from timebank.ledger.audit import audit
from timebank.participants.schemas import TimebankPolicy
from timebank.participants.service import Participants

TASKS = 16
SESSIONS_PER_TASK = 6
PEOPLE = 12
FLOOR, CEILING = -300, 360
# Sessions of more than this many minutes wait for a coordinator (reserved); the others post.
REVIEW_ABOVE = 240
TIGHT = TimebankPolicy(
    default_floor_minutes=FLOOR,
    default_ceiling_minutes=CEILING,
    max_exchange_minutes=60,
    welcome_grant_minutes=0,
)
YESTERDAY = date.today() - timedelta(days=1)


@pytest.fixture
async def wide_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine with a connection for every task and for each twin of a double send."""
    engine = create_async_engine(sqlalchemy_url(database_url), pool_size=2 * TASKS, max_overflow=0)
    yield engine
    await engine.dispose()


@dataclass
class Sent:
    """One session as its client sent it, and what it was answered, with when (the client's
    clock: sent at ``started``, answered by ``ended``)."""

    data: GroupSessionCreate
    key: str | None
    started: float
    ended: float
    session_id: int | None = None
    state: str | None = None
    refusal: LimitExceeded | None = None


@dataclass
class Outcomes:
    acknowledged: dict[int, Sent] = field(default_factory=dict)  # by session id
    refused: list[Sent] = field(default_factory=list)
    replays: int = 0
    double_sends: int = 0


def _session(rng: random.Random, people: list[int]) -> GroupSessionCreate:
    host, *attendees = rng.sample(people, rng.randint(4, 9))
    gives = rng.random() < 0.5
    legs = [
        LegCreate(
            giver_id=host if gives else other,
            receiver_id=other if gives else host,
            minutes=rng.randint(30, 60),
        )
        for other in attendees
    ]
    return GroupSessionCreate(
        legs=legs, host_id=host, service_date=YESTERDAY, category="gardening", description="Class"
    )


async def _task(
    n: int, exchanges: Exchanges, access: TimebankAccess, people: list[int], out: Outcomes
) -> None:
    """Log sessions one after another. Only LimitExceeded is an acceptable refusal: anything
    else (a deadlock above all) propagates and fails the test. A refused session is sent once
    more under its key (a new attempt: nothing was stored); an acknowledged one is sent again
    under its key, and must be answered with the same session, writing nothing."""
    rng = random.Random(f"group-task-{n}")
    for i in range(SESSIONS_PER_TASK):
        data = _session(rng, people)
        key = f"task-{n}-session-{i}" if rng.random() < 0.8 else None
        twins = 2 if key is not None and rng.random() < 0.3 else 1
        out.double_sends += twins - 1
        for _attempt in range(2 if key is not None else 1):
            started = time.monotonic()
            answers = await asyncio.gather(
                *(exchanges.log_group(access, data, key) for _ in range(twins)),
                return_exceptions=True,
            )
            ended = time.monotonic()
            logged = [a for a in answers if not isinstance(a, BaseException)]
            for answer in answers:
                if isinstance(answer, LimitExceeded):
                    out.refused.append(Sent(data, key, started, ended, refusal=answer))
                elif isinstance(answer, BaseException):
                    raise answer
            if not logged:
                continue
            # One key, one session: a twin replays the winner, unless it was refused before
            # the winner was logged (a refusal keeps no key, so the twin tried afresh).
            assert len({a.session.id for a in logged}) == 1, logged
            assert sum(not a.replayed for a in logged) == 1, "one key logged twice"
            session = logged[0].session
            assert session.id not in out.acknowledged
            out.acknowledged[session.id] = Sent(
                data, key, started, ended, session_id=session.id, state=session.state
            )
            if key is not None:
                again = await exchanges.log_group(access, data, key)
                assert again.replayed and again.session.id == session.id
                assert again.session.state == session.state
                out.replays += 1
            break


def _held(data: GroupSessionCreate) -> tuple[dict[int, int], dict[int, int]]:
    """Minutes each participant would receive (in) and give (out) in a session."""
    held_in: dict[int, int] = defaultdict(int)
    held_out: dict[int, int] = defaultdict(int)
    for leg in data.legs:
        held_in[leg.giver_id] += leg.minutes
        held_out[leg.receiver_id] += leg.minutes
    return held_in, held_out


def _really_at_their_limit(refused: Sent, out: Outcomes) -> bool:
    """Whether some state the named participant's account went through, while the refused
    request was in flight, leaves no room for their part of the session.

    Each logging locks every account of its session before it draws the session's id, and
    holds the locks until it commits, so on one account the acknowledged sessions follow one
    another in the order of their ids; the refused request saw a prefix of that order, one
    holding every session answered before it was sent and none sent after it was answered.
    The floor is measured on the balance less what is held out, the ceiling on the balance
    plus what is held in: a session moves both towards the limit whether posted or reserved,
    and away from it only once posted."""
    assert refused.refusal is not None
    participant = refused.refusal.extra["participant_id"]
    limit = refused.refusal.extra["limit"]
    wanted_in, wanted_out = _held(refused.data)
    touching = sorted(
        (sent for sent in out.acknowledged.values() if participant in _parties(sent.data)),
        key=lambda sent: sent.session_id or 0,
    )
    low = max((i + 1 for i, s in enumerate(touching) if s.ended < refused.started), default=0)
    high = min(
        (i for i, s in enumerate(touching) if s.started > refused.ended), default=len(touching)
    )
    measure = 0
    for j in range(len(touching) + 1):
        if low <= j <= high:
            if limit == "floor" and measure - wanted_out[participant] < FLOOR:
                return True
            if limit == "ceiling" and measure + wanted_in[participant] > CEILING:
                return True
        if j < len(touching):
            moved_in, moved_out = _held(touching[j].data)
            posted = touching[j].state == "approved"
            if limit == "floor":
                measure += (moved_in[participant] if posted else 0) - moved_out[participant]
            else:
                measure += moved_in[participant] - (moved_out[participant] if posted else 0)
    return False


def _parties(data: GroupSessionCreate) -> set[int]:
    return {leg.giver_id for leg in data.legs} | {leg.receiver_id for leg in data.legs}


async def test_sessions_logged_at_once_keep_every_invariant(wide_engine: AsyncEngine) -> None:
    participants = Participants(wide_engine)
    tb = await participants.create_timebank(unique_slug("groups"), "Sessions at Once", TIGHT)
    await set_policy(
        wide_engine,
        tb.id,
        confirmation_required=False,
        approval_mode="automatic_unless",
        review_above_minutes=REVIEW_ABOVE,
        review_backdated_days=None,
        review_organisation=False,
        review_first_exchange=False,
    )
    people = [(await participants.enrol(tb, "member", f"Regular {n}")).id for n in range(PEOPLE)]
    coordinator = await make_person(wide_engine, "coordinator", timebank=tb, roles=("coordinator",))
    access = TimebankAccess(
        principal=Principal(
            user_id=coordinator.user_id, email=coordinator.email, is_admin=False, token_id=0
        ),
        timebank_id=tb.id,
        timebank_slug=tb.slug,
        roles=frozenset({"coordinator"}),
    )
    exchanges = Exchanges(wide_engine)
    out = Outcomes()

    await asyncio.wait_for(
        asyncio.gather(*(_task(n, exchanges, access, people, out) for n in range(TASKS))),
        timeout=60,
    )

    states = [sent.state for sent in out.acknowledged.values()]
    assert states.count("approved") >= 5, "too few sessions posted at once to prove anything"
    assert states.count("awaiting_approval") >= 3, "too few sessions reserved to prove anything"
    assert len(out.refused) >= 5, "the limits were never reached: the test is not tight enough"
    assert out.replays >= 5 and out.double_sends >= 5

    async with wide_engine.connect() as conn:
        report = await audit(conn, tb.slug)
        assert report.ok, [str(finding) for finding in report.findings]

        async def rows(sql: str) -> list[Any]:
            return list(await conn.execute(text(sql), {"tb": tb.id}))

        # No account outside its limits, counting what it holds for pending exchanges.
        outside = await rows(
            "SELECT participant_id, balance, pending_in, pending_out, floor, ceiling"
            " FROM accounts WHERE timebank_id = :tb AND participant_id IS NOT NULL"
            "   AND (balance - pending_out < floor OR balance + pending_in > ceiling)"
        )
        assert outside == []

        # Exactly the acknowledged sessions are stored, each with its legs, each leg once.
        groups = {
            row.id: (row.host_id, row.legs, row.minutes)
            for row in await rows(
                "SELECT id, host_id, legs, minutes FROM exchange_groups WHERE timebank_id = :tb"
            )
        }
        assert groups == {
            gid: (
                sent.data.host_id,
                len(sent.data.legs),
                sum(leg.minutes for leg in sent.data.legs),
            )
            for gid, sent in out.acknowledged.items()
        }
        legs = await rows(
            "SELECT e.group_id, e.giver_id, e.receiver_id, e.minutes, e.state, e.transfer_id,"
            "  p.id AS pending_id, p.state AS pending_state"
            " FROM exchanges e LEFT JOIN pending_transfers p ON p.id = e.pending_transfer_id"
            " WHERE e.timebank_id = :tb"
        )
        by_group: dict[int, list[Any]] = defaultdict(list)
        for leg in legs:
            by_group[leg.group_id].append(leg)
        assert set(by_group) == set(out.acknowledged), "a leg outside any acknowledged session"
        for gid, sent in out.acknowledged.items():
            stored = sorted((leg.giver_id, leg.receiver_id, leg.minutes) for leg in by_group[gid])
            asked = sorted((leg.giver_id, leg.receiver_id, leg.minutes) for leg in sent.data.legs)
            assert stored == asked
            assert {leg.state for leg in by_group[gid]} == {sent.state}
            if sent.state == "approved":
                assert all(leg.transfer_id is not None for leg in by_group[gid])
            else:
                assert all(leg.transfer_id is None for leg in by_group[gid])
                assert {leg.pending_state for leg in by_group[gid]} == {"pending"}
        # Each posted leg moved once, each reserved leg is held once, and nothing else moved.
        posted = [leg.transfer_id for leg in legs if leg.transfer_id is not None]
        held = [leg.pending_id for leg in legs if leg.pending_state == "pending"]
        transfers = {
            row.id for row in await rows("SELECT id FROM transfers WHERE timebank_id = :tb")
        }
        pending = {
            row.id
            for row in await rows(
                "SELECT id FROM pending_transfers WHERE timebank_id = :tb AND state = 'pending'"
            )
        }
        assert sorted(posted) == sorted(transfers) and len(set(posted)) == len(posted)
        assert sorted(held) == sorted(pending) and len(set(held)) == len(held)

        # Balances and what is held follow from the acknowledged sessions alone.
        expected = {p: [0, 0, 0] for p in people}  # balance, pending in, pending out
        for sent in out.acknowledged.values():
            for leg in sent.data.legs:
                if sent.state == "approved":
                    expected[leg.giver_id][0] += leg.minutes
                    expected[leg.receiver_id][0] -= leg.minutes
                else:
                    expected[leg.giver_id][1] += leg.minutes
                    expected[leg.receiver_id][2] += leg.minutes
        accounts = {
            row.participant_id: [row.balance, row.pending_in, row.pending_out]
            for row in await rows(
                "SELECT participant_id, balance, pending_in, pending_out FROM accounts"
                " WHERE timebank_id = :tb AND participant_id IS NOT NULL"
            )
        }
        assert accounts == expected

        # A key is stored for each acknowledged keyed session, and for nothing else: a
        # refused session's key was never kept.
        keys = {
            row.key
            for row in await rows("SELECT key FROM idempotency_keys WHERE timebank_id = :tb")
        }
        assert keys == {sent.key for sent in out.acknowledged.values() if sent.key is not None}

    # Every refusal named one of the session's people, who had no room for their part of it.
    for refused in out.refused:
        assert refused.refusal is not None
        assert refused.refusal.extra["participant_id"] in _parties(refused.data)
        assert _really_at_their_limit(refused, out), (refused.data, refused.refusal.extra)
