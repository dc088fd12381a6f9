"""Report speed: the service's reciprocity and contribution reports against the plainest correct
SQL over the raw exchanges, both measured in the same run on a fresh embedded PostgreSQL.

The timebank
    One timebank (wide account limits, at most 720 minutes an exchange) with ``participants``
    participants of all three kinds and ``exchanges`` approved exchanges whose service dates
    fall within the last ``years`` years (up to today), every one of them real: a posted
    ledger transfer each (``ledger_post_batch``, in chunks), the exchange row inserted as
    'logged' and then moved to 'approved' with its transfer (PostgreSQL stamps
    ``approved_at``), and about 1% of them reversed afterwards through ``ledger_reverse``
    (PostgreSQL stamps ``reversed_at``). Participants and exchanges are written by set-based
    SQL rather than through the services, which would take hours; the schema's constraints and
    triggers apply all the same. A final query checks that every exchange matches its transfer
    (and its reversal) account for account and minute for minute.

What the generator assumes (a timebank is a local network of regular relationships)
    - Kinds: 92% members, 5% professionals (a nurse, a tutor: people giving through their
      work), 3% organisations (a library, a food bank).
    - Participants live in neighbourhoods of about 150; about a third joined before the
      window (the founders, up to two years earlier), the rest joined evenly over it, so the
      timebank grows and so does its activity (about half the exchanges fall in the last
      year).
    - A fifth of the members never exchange at all. Everyone else has an activity weight
      drawn from a log-normal distribution (a few busy people, a long tail), three times
      heavier for professionals and six times for organisations.
    - Each active participant has a small circle of regular partners: 1-5 for members, 10-30
      for professionals, 20-60 for organisations; 85% of them from the same neighbourhood, the
      rest from anywhere in town, busier people more likely (in proportion to the square root
      of their weight). A tie has a strength (how often the pair meets: the less busy of the
      two sets the pace), a direction (a professional gives to a member nine times in ten;
      30% of other ties are one-way, like befriending a housebound neighbour; the rest go
      both ways in varying proportion), a favourite category (70% of the pair's exchanges)
      and a lifetime (exponential, 900 days on average) starting once both have joined.
    - 95% of the exchanges are drawn from these ties in proportion to strength times
      lifetime, on a day of the tie's life, so nobody exchanges before joining; 5% are
      one-offs between neighbours. Minutes are 30 to 180, in quarter hours, mostly 60 to 120.
    - Categories are the ones every timebank is seeded with (``DEFAULT_CATEGORIES``),
      professionals leaning to wellbeing and tutoring, organisations to events and befriending.

Building it fast
    The exchanges go in chunks of 20,000 in service-date order down a pipeline of two
    connections: one posts a chunk's transfers (one ``ledger_post_batch`` call) and inserts
    its exchange rows as 'logged'; the other approves each logged chunk behind it. Approvals
    are the slow part, since PostgreSQL moves the report aggregates with every one of them,
    and they stay on one connection: two approvers would take the same aggregate rows in
    different orders and deadlock. Behind the approvals, the first connection posts the
    reversals of the chosen 1% (``ledger_reverse``); the exchanges are marked reversed at the
    end. The exchanges table is then rewritten compactly (``VACUUM FULL``): in a live timebank
    each exchange is logged and approved days apart and autovacuum reuses the space in
    between, whereas a bulk build leaves a dead copy of every row behind. Then ``VACUUM
    ANALYZE`` of every table and a ``CHECKPOINT``.

What is measured
    For the twelve most recent full calendar months, and as of one moment T taken after the
    build (passed to every call, so every run counts the same exchanges):
    (a) ``Reports.contribution``, monthly, full view; (b) the funder view of the last calendar
    year (its publication protected once, at the warm-up, then remembered);
    (c) ``Reports.reciprocity`` for one participant (the busiest member of the year);
    (d) ``Reports.reciprocity`` for everyone; and the plainest correct SQL a newcomer would
    write from the definitions in ``timebank/reports/__init__.py``, straight over the
    exchanges, participants and categories tables with nothing precomputed: (e) for (a), (f)
    for (c); (d) is checked instead to add up to (a)'s totals and to hold (c)'s row. Every job
    runs once to warm up, then ``runs`` rounds run every job in turn (interleaved, so that
    whatever else the machine does falls on all alike); the table gives the median and the
    range in milliseconds of wall time as the caller sees it (the service's own Python
    included). The plain SQL is planned afresh for its parameters
    each time (``plan_cache_mode = force_custom_plan``, as psql would run it): a cached generic
    plan can be far worse, and the baseline should not lose by accident. The service runs on
    its own engine exactly as deployed. The plain queries' figures are checked against the
    service's. Every SQL statement the service sends is timed too (SQLAlchemy's cursor events)
    and named after the constant of ``timebank.reports.repository`` it comes from, so the
    output says where each report's time goes; ``explain=True`` (``--explain``) adds
    EXPLAIN (ANALYZE, BUFFERS) of each, as a custom and as a generic plan.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import random
import re
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.auth.schemas import Principal, TimebankAccess
from timebank.bench.ledger import _server_facts, _start_server
from timebank.db import embedded, migrations
from timebank.db.engine import asyncpg_dsn, create_engine
from timebank.participants.schemas import DEFAULT_CATEGORIES, TimebankPolicy
from timebank.participants.service import Participants
from timebank.reports import repository as report_sql
from timebank.reports.queue import apply_queued
from timebank.reports.release import Release
from timebank.reports.schemas import ContributionReport, ReciprocityReport, View
from timebank.reports.service import Reports
from timebank.settings import Settings

SLUG = "bench-reports"
FLOOR_MINUTES = -10_000_000
CEILING_MINUTES = 10_000_000
MAX_EXCHANGE_MINUTES = 720

PROFESSIONAL_SHARE = 0.05
ORGANISATION_SHARE = 0.03
NEIGHBOURHOOD_SIZE = 150
FOUNDER_SHARE = 0.35
FOUNDED_DAYS_BEFORE = 730
DORMANT_MEMBER_SHARE = 0.20
KIND_ACTIVITY = {"member": 1.0, "professional": 3.0, "organisation": 6.0}
CIRCLE_SIZE = {"member": (1, 5), "professional": (10, 30), "organisation": (20, 60)}
LOCAL_SHARE = 0.85
ONE_WAY_SHARE = 0.30
TIE_DAYS = 900  # mean lifetime of a tie (exponential)
ACTIVITY_SIGMA = 0.7
FAVOURITE_SHARE = 0.70
ONE_OFF_SHARE = 0.05
REVERSED_SHARE = 0.01
MINUTES = (30, 45, 60, 75, 90, 105, 120, 135, 150, 165, 180)
MINUTE_WEIGHTS = (6, 5, 20, 8, 16, 5, 14, 3, 5, 1, 3)
CATEGORY_WEIGHTS = {
    "befriending": 18,
    "gardening": 14,
    "lifts": 12,
    "cooking": 10,
    "tutoring": 8,
    "household": 14,
    "admin": 6,
    "wellbeing": 6,
    "events": 6,
    "other": 6,
}
KIND_CATEGORIES = {
    "professional": ("wellbeing", "tutoring", "admin"),
    "organisation": ("events", "befriending", "cooking"),
}
REVERSAL_REASONS = (
    "Logged twice by mistake",
    "Entered for the wrong person",
    "The exchange did not take place",
)

CHUNK = 20_000  # exchanges posted, logged and approved together
MARK_CHUNK = 2_000  # exchanges marked reversed together
APPROVE_CHUNK = 20_000  # exchanges approved together (one transaction)
ENROL_CHUNK = 1_000  # participants enrolled together (one transaction)
SEED = 2026

TARGET_CONTRIBUTION_MS = 150.0
TARGET_CONTRIBUTION_RATIO = 10.0
TARGET_RECIPROCITY_MS = 20.0


# ------------------------------------------------------------------------------------------
# The generator: people, their circles, their exchanges (all in memory, indexes 0..n-1)
# ------------------------------------------------------------------------------------------


@dataclass
class _Town:
    kinds: list[str]
    joined: list[int]  # date ordinals
    hood: list[int]
    weight: list[float]
    hoods: int


@dataclass
class _Tie:
    a: int
    b: int
    strength: float
    a_gives: float  # probability that a is the giver
    favourite: str
    since: int  # the first day the pair exchanges: both have joined (ordinal)
    days: int  # how many days the tie lasts within the window


@dataclass
class _Plan:
    """The exchanges to write, in service-date order."""

    day: list[int] = field(default_factory=list)
    giver: list[int] = field(default_factory=list)
    receiver: list[int] = field(default_factory=list)
    minutes: list[int] = field(default_factory=list)
    category: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.day)


class _Picker:
    """Draw from a list of people in proportion to their weights."""

    def __init__(self, people: list[int], weight: list[float]) -> None:
        self.people = people
        self.cumulative = list(itertools.accumulate(weight[p] for p in people))

    def pick(self, rng: random.Random) -> int:
        total = self.cumulative[-1]
        return self.people[bisect.bisect_right(self.cumulative, rng.random() * total)]


def _town(n: int, first_day: int, last_day: int, rng: random.Random) -> _Town:
    professionals = round(n * PROFESSIONAL_SHARE)
    organisations = round(n * ORGANISATION_SHARE)
    kinds = (
        ["professional"] * professionals
        + ["organisation"] * organisations
        + ["member"] * (n - professionals - organisations)
    )
    rng.shuffle(kinds)
    hoods = max(1, round(n / NEIGHBOURHOOD_SIZE))
    hood = [rng.randrange(hoods) for _ in range(n)]
    joined = [
        first_day - rng.randint(1, FOUNDED_DAYS_BEFORE)
        if rng.random() < FOUNDER_SHARE
        else rng.randint(first_day, last_day)
        for _ in range(n)
    ]
    weight = [
        0.0
        if kind == "member" and rng.random() < DORMANT_MEMBER_SHARE
        else KIND_ACTIVITY[kind] * rng.lognormvariate(0.0, ACTIVITY_SIGMA)
        for kind in kinds
    ]
    return _Town(kinds=kinds, joined=joined, hood=hood, weight=weight, hoods=hoods)


def _category(rng: random.Random, kinds: tuple[str, str]) -> str:
    for kind in kinds:
        if kind in KIND_CATEGORIES and rng.random() < 0.8:
            return rng.choice(KIND_CATEGORIES[kind])
    return rng.choices(list(CATEGORY_WEIGHTS), weights=list(CATEGORY_WEIGHTS.values()))[0]


def _direction(rng: random.Random, kind_a: str, kind_b: str) -> float:
    if kind_a == "professional" and kind_b != "professional":
        return 0.9
    if kind_b == "professional" and kind_a != "professional":
        return 0.1
    if rng.random() < ONE_WAY_SHARE:
        return 0.97 if rng.random() < 0.5 else 0.03
    return rng.betavariate(2, 2)


def _pickers(town: _Town) -> tuple[_Picker, list[_Picker | None]]:
    active = [p for p, w in enumerate(town.weight) if w > 0]
    local: list[list[int]] = [[] for _ in range(town.hoods)]
    for p in active:
        local[town.hood[p]].append(p)
    # Busier people are more likely partners, though less than in proportion.
    pull = [math.sqrt(w) for w in town.weight]
    return _Picker(active, pull), [
        _Picker(people, pull) if len(people) > 1 else None for people in local
    ]


def _ties(town: _Town, first_day: int, last_day: int, rng: random.Random) -> list[_Tie]:
    everyone, local = _pickers(town)
    if len(everyone.people) < 2:
        raise ValueError("the generated timebank has fewer than two active participants")
    ties: list[_Tie] = []
    seen: set[tuple[int, int]] = set()
    for p in everyone.people:
        low, high = CIRCLE_SIZE[town.kinds[p]]
        neighbours = local[town.hood[p]]
        for _ in range(rng.randint(low, high)):
            pool = neighbours if neighbours and rng.random() < LOCAL_SHARE else everyone
            q = pool.pick(rng)
            key = (p, q) if p < q else (q, p)
            if q == p or key in seen:
                continue
            seen.add(key)
            a, b = key
            kinds = (town.kinds[a], town.kinds[b])
            since = max(first_day, town.joined[a], town.joined[b])
            lasts = 1 + round(rng.expovariate(1 / TIE_DAYS))
            ties.append(
                _Tie(
                    a=a,
                    b=b,
                    # the less busy of the two sets the pace
                    strength=min(town.weight[a], town.weight[b]) * rng.lognormvariate(0.0, 0.5),
                    a_gives=_direction(rng, *kinds),
                    favourite=_category(rng, kinds),
                    since=since,
                    days=min(lasts, last_day - since + 1),
                )
            )
    return ties


def _plan(town: _Town, count: int, first_day: int, last_day: int, rng: random.Random) -> _Plan:
    ties = _ties(town, first_day, last_day, rng)
    everyone, local = _pickers(town)
    # A tie exchanges at a steady rate while it lasts: drawn in proportion to its strength
    # times its days, on a day of its own uniformly.
    cumulative = list(itertools.accumulate(t.strength * t.days for t in ties))
    total = cumulative[-1]
    span = last_day - first_day + 1
    minutes = rng.choices(MINUTES, weights=MINUTE_WEIGHTS, k=count)
    rows: list[tuple[int, int, int, int, str]] = []
    one_offs = round(count * ONE_OFF_SHARE)
    for tie in (
        ties[bisect.bisect_right(cumulative, rng.random() * total)] for _ in range(count - one_offs)
    ):
        day = tie.since + rng.randrange(tie.days)
        giver, receiver = (tie.a, tie.b) if rng.random() < tie.a_gives else (tie.b, tie.a)
        category = (
            tie.favourite
            if rng.random() < FAVOURITE_SHARE
            else _category(rng, (town.kinds[giver], town.kinds[receiver]))
        )
        rows.append((day, giver, receiver, minutes[len(rows)], category))
    while len(rows) < count:
        giver = everyone.pick(rng)
        neighbours = local[town.hood[giver]] or everyone
        receiver = neighbours.pick(rng)
        day = first_day + rng.randrange(span)
        if receiver == giver or day < max(town.joined[giver], town.joined[receiver]):
            continue
        category = _category(rng, (town.kinds[giver], town.kinds[receiver]))
        rows.append((day, giver, receiver, minutes[len(rows)], category))
    rows.sort(key=lambda row: row[0])
    plan = _Plan()
    for day, giver, receiver, spent, category in rows:
        plan.day.append(day)
        plan.giver.append(giver)
        plan.receiver.append(receiver)
        plan.minutes.append(spent)
        plan.category.append(category)
    return plan


# ------------------------------------------------------------------------------------------
# Writing it: participants, transfers, exchanges, reversals
# ------------------------------------------------------------------------------------------


class _Progress:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def say(self, message: str) -> None:
        print(f"  [{self.elapsed():6.1f} s] {message}", flush=True)


_CREATE_PARTICIPANTS = """
    WITH new_participants AS (
        INSERT INTO participants (timebank_id, kind, display_name, joined_on)
        SELECT $1, u.kind, u.name, u.joined_on
          FROM unnest($2::text[], $3::text[], $4::date[])
               WITH ORDINALITY AS u(kind, name, joined_on, ord)
         ORDER BY u.ord
        RETURNING id
    )
    INSERT INTO accounts (timebank_id, participant_id, floor, ceiling)
    SELECT $1, id, $5, $6 FROM new_participants ORDER BY id
    RETURNING participant_id, id
"""

_POST_BATCH = """
    SELECT array_agg((b.transfer).id ORDER BY (b.transfer).id)
      FROM ledger_post_batch($1, $2::bigint[], $3::bigint[], $4::bigint[], 'exchange',
                             $5::text[], NULL, NULL, NULL) AS b
"""

_INSERT_LOGGED = """
    INSERT INTO exchanges (id, timebank_id, giver_id, receiver_id, minutes, service_date,
                           category_id, state, logged_for)
    OVERRIDING SYSTEM VALUE
    SELECT u.id, $1, u.giver_id, u.receiver_id, u.minutes, u.service_date, u.category_id,
           'logged', 'giver'
      FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::date[],
                  $7::bigint[]) AS u(id, giver_id, receiver_id, minutes, service_date, category_id)
"""

_APPROVE = """
    UPDATE exchanges e
       SET state = 'approved', transfer_id = ($2::bigint[])[e.id - $3 + 1], updated_at = now()
     WHERE e.id BETWEEN $3 AND $4 AND e.timebank_id = $1 AND e.state = 'logged'
"""

_REVERSE = """
    SELECT (r.transfer).id
      FROM unnest($2::bigint[], $3::text[]) WITH ORDINALITY AS u(transfer_id, reason, ord)
     CROSS JOIN LATERAL ledger_reverse($1, u.transfer_id, u.reason, NULL, NULL, NULL) AS r
     ORDER BY u.ord
"""

_MARK_REVERSED = """
    UPDATE exchanges e
       SET state = 'reversed', reversal_transfer_id = u.reversal_id, updated_at = now()
      FROM unnest($2::bigint[], $3::bigint[]) AS u(id, reversal_id)
     WHERE e.id = u.id AND e.timebank_id = $1 AND e.state = 'approved'
"""

_CHECK_LINKS = """
    SELECT count(*) AS exchanges,
           count(*) FILTER (WHERE e.state = 'reversed') AS reversed,
           count(*) FILTER (
               WHERE t.id IS NULL OR t.kind <> 'exchange' OR t.minutes <> e.minutes
                  OR t.debit_account_id <> ra.id OR t.credit_account_id <> ga.id
                  OR (e.state = 'reversed') <> (r.id IS NOT NULL)
                  OR r.reverses_transfer_id <> t.id
                  OR e.approved_at IS NULL
                  OR (e.state = 'reversed') <> (e.reversed_at IS NOT NULL)
           ) AS broken
      FROM exchanges e
      JOIN accounts ga ON ga.participant_id = e.giver_id
      JOIN accounts ra ON ra.participant_id = e.receiver_id
      LEFT JOIN transfers t ON t.id = e.transfer_id
      LEFT JOIN transfers r ON r.id = e.reversal_transfer_id
     WHERE e.timebank_id = $1
"""


@dataclass
class _Built:
    timebank_id: int
    participant_ids: list[int]
    exchanges: int
    reversed: int
    seconds: float
    phases: dict[str, float]


async def _connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await conn.execute("SET synchronous_commit = off")
    return conn


def _chunks(items: Sequence[int], size: int) -> list[list[int]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


async def _built_before(dsn: str) -> _Built | None:
    """The benchmark timebank a previous run left in a kept database, if there is one."""
    conn = await asyncpg.connect(dsn)
    try:
        timebank_id = await conn.fetchval("SELECT id FROM timebanks WHERE slug = $1", SLUG)
        if timebank_id is None:
            return None
        ids = await conn.fetch(
            "SELECT id FROM participants WHERE timebank_id = $1 ORDER BY id", timebank_id
        )
        counts = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE approved_at IS NOT NULL) AS approved,"
            " count(*) FILTER (WHERE reversed_at IS NOT NULL) AS reversed"
            " FROM exchanges WHERE timebank_id = $1",
            timebank_id,
        )
        # A newer schema may have brought new aggregates: give the planner their statistics.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return _Built(
        timebank_id, [row["id"] for row in ids], counts["approved"], counts["reversed"], 0.0, {}
    )


async def _build(
    dsn: str,
    participants_service: Participants,
    *,
    participants: int,
    exchanges: int,
    years: int,
    progress: _Progress,
) -> _Built:
    rng = random.Random(SEED)  # noqa: S311 - test data, not security
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - mark
        mark = now

    today = date.today()
    last_day = today.toordinal()
    first_day = (today - timedelta(days=round(365.25 * years)) + timedelta(days=1)).toordinal()

    progress.say(f"generating {participants:,} participants and their circles ...")
    town = _town(participants, first_day, last_day, rng)
    plan = _plan(town, exchanges, first_day, last_day, rng)
    phase("generate")
    progress.say(f"generated {len(plan):,} exchanges from {date.fromordinal(first_day)} on")

    timebank = await participants_service.create_timebank(
        SLUG,
        "Reports benchmark",
        TimebankPolicy(
            default_floor_minutes=FLOOR_MINUTES,
            default_ceiling_minutes=CEILING_MINUTES,
            max_exchange_minutes=MAX_EXCHANGE_MINUTES,
            welcome_grant_minutes=0,
        ),
    )
    tb = timebank.id
    first, second = await _connect(dsn), await _connect(dsn)
    try:
        categories = {
            row["slug"]: row["id"]
            for row in await first.fetch(
                "SELECT slug, id FROM categories WHERE timebank_id = $1", tb
            )
        }
        counters = {kind: 0 for kind in KIND_ACTIVITY}
        names = []
        for kind in town.kinds:
            counters[kind] += 1
            names.append(f"{kind.capitalize()} {counters[kind]}")
        pid: list[int] = []  # database ids, in the generator's order
        account: list[int] = []
        for few in _chunks(range(participants), ENROL_CHUNK):
            rows = await first.fetch(
                _CREATE_PARTICIPANTS,
                tb,
                [town.kinds[p] for p in few],
                [names[p] for p in few],
                [date.fromordinal(town.joined[p]) for p in few],
                FLOOR_MINUTES,
                CEILING_MINUTES,
            )
            pid += [row["participant_id"] for row in rows]  # ascending ids, in the order given
            account += [row["id"] for row in rows]
        phase("participants")
        progress.say(
            f"enrolled {participants:,} participants "
            f"({counters['member']:,} members, {counters['professional']:,} professionals, "
            f"{counters['organisation']:,} organisations) in {town.hoods} "
            + ("neighbourhood" if town.hoods == 1 else "neighbourhoods")
        )

        # Exchange ids are reserved up front, in service-date order.
        base = await first.fetchval("SELECT nextval(pg_get_serial_sequence('exchanges', 'id'))")
        await first.execute(
            "SELECT setval(pg_get_serial_sequence('exchanges', 'id'), $1)", base + len(plan) - 1
        )
        memo = dict(DEFAULT_CATEGORIES)
        transfer_of = [0] * len(plan)
        reversal_of: dict[int, int] = {}
        chosen = set(rng.sample(range(len(plan)), round(len(plan) * REVERSED_SHARE)))
        reasons = {i: rng.choice(REVERSAL_REASONS) for i in sorted(chosen)}
        chunks = _chunks(range(len(plan)), CHUNK)
        posted: asyncio.Queue[list[int] | None] = asyncio.Queue()
        approved: asyncio.Queue[list[int] | None] = asyncio.Queue()
        done = {"posted": 0, "approved": 0, "reversed": 0}

        async def ledger_side(conn: asyncpg.Connection) -> None:
            """Post each chunk's transfers and log its exchanges; then, behind the approvals,
            post the reversals of the chosen few."""
            for number, chunk in enumerate(chunks):
                ids = await conn.fetchval(
                    _POST_BATCH,
                    tb,
                    [account[plan.receiver[i]] for i in chunk],
                    [account[plan.giver[i]] for i in chunk],
                    [plan.minutes[i] for i in chunk],
                    [memo[plan.category[i]] for i in chunk],
                )
                if ids is None or len(ids) != len(chunk):
                    raise RuntimeError("ledger_post_batch did not post the whole batch")
                for i, transfer_id in zip(chunk, ids, strict=True):
                    transfer_of[i] = transfer_id
                await conn.execute(
                    _INSERT_LOGGED,
                    tb,
                    [base + i for i in chunk],
                    [pid[plan.giver[i]] for i in chunk],
                    [pid[plan.receiver[i]] for i in chunk],
                    [plan.minutes[i] for i in chunk],
                    [date.fromordinal(plan.day[i]) for i in chunk],
                    [categories[plan.category[i]] for i in chunk],
                )
                if number % 5 == 0:
                    await conn.execute("ANALYZE exchanges")
                done["posted"] += len(chunk)
                progress.say(
                    f"posted {done['posted']:,} / {len(plan):,} transfers and logged their "
                    "exchanges"
                )
                await posted.put(chunk)
            await posted.put(None)
            while (settled := await approved.get()) is not None:
                # The approvals of this chunk are committed: its transfers are free to reverse.
                picked = [i for i in settled if i in chosen]
                if picked:
                    async with conn.transaction():
                        ids = await conn.fetch(
                            _REVERSE,
                            tb,
                            [transfer_of[i] for i in picked],
                            [reasons[i] for i in picked],
                        )
                    reversal_of.update(zip(picked, (row[0] for row in ids), strict=True))

        async def approver(conn: asyncpg.Connection) -> None:
            """Approve each chunk as soon as it is logged, then bring the report aggregates up
            to date with it, as the service's background applier does (one connection: two
            approvers would lock each other)."""
            while (chunk := await posted.get()) is not None:
                for few in _chunks(chunk, APPROVE_CHUNK):
                    await conn.execute(
                        _APPROVE,
                        tb,
                        [transfer_of[i] for i in few],
                        base + few[0],
                        base + few[-1],
                    )
                await apply_queued(conn)
                done["approved"] += len(chunk)
                progress.say(f"approved {done['approved']:,} / {len(plan):,} exchanges")
                await approved.put(chunk)
            await approved.put(None)

        progress.say(
            f"posting, logging and approving {len(plan):,} exchanges in chunks of {CHUNK:,} "
            "(the approvals trailing on a second connection)"
        )
        await asyncio.gather(ledger_side(second), approver(first))
        phase("transfers, exchanges, approvals")

        await first.execute("ANALYZE exchanges")
        marks = sorted(reversal_of)
        for chunk in _chunks(marks, MARK_CHUNK):
            await first.execute(
                _MARK_REVERSED,
                tb,
                [base + i for i in chunk],
                [reversal_of[i] for i in chunk],
            )
            done["reversed"] += len(chunk)
        await apply_queued(first)
        phase("reversals")
        progress.say(
            f"reversed {done['reversed']:,} exchanges (their reversals posted through "
            "ledger_reverse)"
        )

        check = await first.fetchrow(_CHECK_LINKS, tb)
        if check["broken"] or check["exchanges"] != len(plan):
            raise RuntimeError(
                f"{check['broken']} of {check['exchanges']} exchanges do not match their transfers"
            )
        phase("check")
        progress.say(
            f"checked: all {check['exchanges']:,} exchanges match their transfers "
            f"({check['reversed']:,} reversed)"
        )

        progress.say("VACUUM FULL exchanges, VACUUM ANALYZE, CHECKPOINT ...")
        others = await second.fetchval(
            "SELECT string_agg(quote_ident(relname), ', ') FROM pg_stat_user_tables"
            " WHERE relname <> 'exchanges'"
        )

        async def exchanges_table() -> None:
            await first.execute("VACUUM FULL exchanges")
            await first.execute("VACUUM (ANALYZE) exchanges")

        await asyncio.gather(exchanges_table(), second.execute(f"VACUUM (ANALYZE) {others}"))
        await first.execute("CHECKPOINT")
        phase("vacuum")
    finally:
        await asyncio.gather(first.close(), second.close())
    return _Built(
        timebank_id=tb,
        participant_ids=pid,
        exchanges=int(check["exchanges"]),
        reversed=int(check["reversed"]),
        seconds=sum(phases.values()),
        phases=phases,
    )


# ------------------------------------------------------------------------------------------
# The plainest correct SQL, straight from the definitions (timebank/reports/__init__.py)
# ------------------------------------------------------------------------------------------

# $1 timebank, $2 first day, $3 last day, $4 as_of. Every month of the period (clipped to
# it), and the whole period as one more row.
PLAIN_CONTRIBUTION_SERIES = """
    WITH periods AS (
        SELECT greatest(CAST(m AS date), $2::date) AS first_day,
               least(CAST(m + interval '1 month' AS date) - 1, $3::date) AS last_day,
               false AS whole
          FROM generate_series(date_trunc('month', $2::timestamp), $3::timestamp,
                               interval '1 month') AS m
        UNION ALL
        SELECT $2::date, $3::date, true
    ),
    counted AS (
        SELECT e.giver_id, e.receiver_id, e.minutes, e.service_date
          FROM exchanges e
         WHERE e.timebank_id = $1
           AND e.approved_at <= $4
           AND (e.reversed_at IS NULL OR e.reversed_at > $4)
    ),
    in_period AS (
        SELECT p.first_day, p.whole, c.*
          FROM periods p JOIN counted c ON c.service_date BETWEEN p.first_day AND p.last_day
    ),
    volume AS (
        SELECT first_day, whole, sum(minutes) AS minutes, count(*) AS exchanges
          FROM in_period GROUP BY first_day, whole
    ),
    took_part AS (
        SELECT first_day, whole, participant_id, bool_or(gave) AS gave,
               bool_or(received) AS received
          FROM (SELECT first_day, whole, giver_id AS participant_id, true AS gave,
                       false AS received
                  FROM in_period
                UNION ALL
                SELECT first_day, whole, receiver_id, false, true FROM in_period) AS sides
         GROUP BY first_day, whole, participant_id
    ),
    people AS (
        SELECT first_day, whole, count(*) AS active,
               count(*) FILTER (WHERE gave AND received) AS reciprocal
          FROM took_part GROUP BY first_day, whole
    ),
    pairs AS (
        SELECT first_day, whole, least(giver_id, receiver_id) AS one,
               greatest(giver_id, receiver_id) AS other, count(DISTINCT giver_id) AS directions
          FROM in_period GROUP BY first_day, whole, one, other
    ),
    ties AS (
        SELECT first_day, whole, count(*) AS ties,
               count(*) FILTER (WHERE directions = 2) AS two_way_ties
          FROM pairs GROUP BY first_day, whole
    ),
    first_dates AS (
        SELECT participant_id, min(service_date) AS first_date
          FROM (SELECT giver_id AS participant_id, service_date FROM counted
                UNION ALL
                SELECT receiver_id, service_date FROM counted) AS sides
         GROUP BY participant_id
    ),
    firsts AS (
        SELECT p.first_day, p.whole, count(*) AS first_exchanges,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY greatest(f.first_date - pt.joined_on, 0)) AS median_days
          FROM periods p
          JOIN first_dates f ON f.first_date BETWEEN p.first_day AND p.last_day
          JOIN participants pt ON pt.id = f.participant_id
         GROUP BY p.first_day, p.whole
    ),
    enrolled AS (
        SELECT p.first_day, p.whole,
               count(pt.id) FILTER (WHERE pt.joined_on <= p.last_day) AS participants,
               count(pt.id) FILTER (WHERE pt.joined_on BETWEEN p.first_day AND p.last_day)
                   AS new
          FROM periods p
          LEFT JOIN participants pt ON pt.timebank_id = $1 AND pt.created_at <= $4
         GROUP BY p.first_day, p.whole
    )
    SELECT p.first_day, p.last_day, p.whole,
           coalesce(v.minutes, 0) AS minutes, coalesce(v.exchanges, 0) AS exchanges,
           en.participants, en.new,
           coalesce(pe.active, 0) AS active, coalesce(pe.reciprocal, 0) AS reciprocal,
           coalesce(t.ties, 0) AS ties, coalesce(t.two_way_ties, 0) AS two_way_ties,
           coalesce(f.first_exchanges, 0) AS first_exchanges, f.median_days
      FROM periods p
      JOIN enrolled en USING (first_day, whole)
      LEFT JOIN volume v USING (first_day, whole)
      LEFT JOIN people pe USING (first_day, whole)
      LEFT JOIN ties t USING (first_day, whole)
      LEFT JOIN firsts f USING (first_day, whole)
     ORDER BY p.whole, p.first_day
"""

PLAIN_CONTRIBUTION_CATEGORIES = """
    WITH counted AS (
        SELECT e.giver_id, e.receiver_id, e.minutes, e.category_id
          FROM exchanges e
         WHERE e.timebank_id = $1 AND e.service_date BETWEEN $2 AND $3
           AND e.approved_at <= $4
           AND (e.reversed_at IS NULL OR e.reversed_at > $4)
    ),
    people AS (
        SELECT category_id, count(DISTINCT participant_id) AS people
          FROM (SELECT category_id, giver_id AS participant_id FROM counted
                UNION ALL
                SELECT category_id, receiver_id FROM counted) AS sides
         GROUP BY category_id
    )
    SELECT c.slug AS category, c.name, sum(x.minutes) AS minutes, count(*) AS exchanges,
           max(p.people) AS people
      FROM counted x
      JOIN categories c ON c.id = x.category_id
      JOIN people p ON p.category_id = x.category_id
     GROUP BY c.slug, c.name
     ORDER BY minutes DESC, c.slug
"""

PLAIN_CONTRIBUTION_FLOWS = """
    WITH counted AS (
        SELECT e.giver_id, e.receiver_id, e.minutes, g.kind AS giver_kind,
               r.kind AS receiver_kind
          FROM exchanges e
          JOIN participants g ON g.id = e.giver_id
          JOIN participants r ON r.id = e.receiver_id
         WHERE e.timebank_id = $1 AND e.service_date BETWEEN $2 AND $3
           AND e.approved_at <= $4
           AND (e.reversed_at IS NULL OR e.reversed_at > $4)
    ),
    people AS (
        SELECT giver_kind, receiver_kind, count(DISTINCT participant_id) AS people
          FROM (SELECT giver_kind, receiver_kind, giver_id AS participant_id FROM counted
                UNION ALL
                SELECT giver_kind, receiver_kind, receiver_id FROM counted) AS sides
         GROUP BY giver_kind, receiver_kind
    )
    SELECT x.giver_kind, x.receiver_kind, sum(x.minutes) AS minutes, count(*) AS exchanges,
           max(p.people) AS people
      FROM counted x JOIN people p USING (giver_kind, receiver_kind)
     GROUP BY x.giver_kind, x.receiver_kind
     ORDER BY minutes DESC, x.giver_kind, x.receiver_kind
"""

# $1 timebank, $2 first day, $3 last day, $4 as_of, $5 the participant.
PLAIN_RECIPROCITY_ONE = """
    SELECT p.id AS participant_id, p.display_name, p.kind,
           coalesce(sum(e.minutes) FILTER (WHERE e.giver_id = p.id), 0) AS given_minutes,
           coalesce(sum(e.minutes) FILTER (WHERE e.receiver_id = p.id), 0) AS received_minutes,
           count(e.id) FILTER (WHERE e.giver_id = p.id) AS exchanges_given,
           count(e.id) FILTER (WHERE e.receiver_id = p.id) AS exchanges_received,
           count(DISTINCT CASE WHEN e.giver_id = p.id THEN e.receiver_id ELSE e.giver_id END)
               AS partners
      FROM participants p
      LEFT JOIN exchanges e
        ON (e.giver_id = p.id OR e.receiver_id = p.id)
       AND e.service_date BETWEEN $2 AND $3
       AND e.approved_at <= $4
       AND (e.reversed_at IS NULL OR e.reversed_at > $4)
     WHERE p.timebank_id = $1 AND p.created_at <= $4 AND p.id = $5
     GROUP BY p.id
     ORDER BY p.id
"""

_BUSIEST_MEMBER = """
    SELECT s.participant_id, count(*) AS exchanges
      FROM (SELECT giver_id AS participant_id FROM exchanges e
             WHERE e.timebank_id = $1 AND e.service_date BETWEEN $2 AND $3
               AND e.approved_at <= $4 AND (e.reversed_at IS NULL OR e.reversed_at > $4)
            UNION ALL
            SELECT receiver_id FROM exchanges e
             WHERE e.timebank_id = $1 AND e.service_date BETWEEN $2 AND $3
               AND e.approved_at <= $4 AND (e.reversed_at IS NULL OR e.reversed_at > $4)) AS s
      JOIN participants p ON p.id = s.participant_id AND p.kind = 'member'
     GROUP BY s.participant_id
     ORDER BY exchanges DESC, s.participant_id
     LIMIT 1
"""


# ------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Wall-clock milliseconds of the measured runs of one report (the warm-up left out)."""

    key: str
    name: str
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "median_ms": round(self.median, 2),
            "min_ms": round(min(self.samples), 2),
            "max_ms": round(max(self.samples), 2),
            "runs_ms": [round(s, 2) for s in self.samples],
        }


Job = tuple[str, str, Callable[[], Awaitable[Any]]]


class _StatementClock:
    """Times every SQL statement the service sends (SQLAlchemy's cursor events on its engine),
    run by run, and names each after the constant of ``timebank.reports.repository`` it comes
    from, so the table can say which query a report's time goes to."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.current: list[tuple[str, Any, float]] | None = None
        self.runs: dict[str, list[list[tuple[str, Any, float]]]] = {}
        self._names = {
            _shape(value, named=True): name.strip("_")
            for name, value in vars(report_sql).items()
            if isinstance(value, str) and "SELECT" in value
        }
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        started = conn.info.pop("bench_started", None)
        if self.current is not None and started is not None:
            self.current.append((statement, parameters, time.perf_counter() - started))

    def name(self, statement: str, position: int) -> str:
        words = " ".join(statement.split()[:3])
        return self._names.get(_shape(statement, named=False), f"{position}:'{words}'")

    def breakdown(self, key: str) -> list[tuple[str, float, str, Any]]:
        """(name, median ms over the measured runs, SQL, parameters of the last run) of each
        statement of a job, in the order sent."""
        runs = self.runs.get(key, [])[1:]  # the warm-up left out
        if not runs or len({len(run) for run in runs}) != 1:
            return []
        return [
            (
                self.name(runs[-1][i][0], i + 1),
                1000 * statistics.median(run[i][2] for run in runs),
                runs[-1][i][0],
                runs[-1][i][1],
            )
            for i in range(len(runs[0]))
        ]


def _shape(sql: str, *, named: bool) -> str:
    """SQL with its bind markers blanked and its spacing collapsed: the same for a constant of
    the repository (``:name``) and for the statement the driver was sent (``$1::TYPE``)."""
    marker = r"(?<![:\w]):\w+" if named else r"\$\d+(?:::[A-Z][A-Z ]*(?:\[\])?)?"
    return " ".join(re.sub(marker, "?", sql).split())


async def _measure(
    jobs: list[Job], runs: int, clock: _StatementClock | None = None
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """One warm-up of every job, then ``runs`` rounds of every job in turn (interleaved, so
    that whatever else the machine does falls on reports and plain SQL alike)."""
    samples: dict[str, list[float]] = {key: [] for key, _, _ in jobs}
    results: dict[str, Any] = {}
    for round_number in range(runs + 1):  # round 0 is the warm-up
        for key, _, call in jobs:
            if clock is not None:
                clock.current = []
            started = time.perf_counter()
            results[key] = await call()
            elapsed = 1000 * (time.perf_counter() - started)
            if clock is not None and clock.current is not None:
                clock.runs.setdefault(key, []).append(clock.current)
                clock.current = None
            if round_number:
                samples[key].append(elapsed)
        if round_number:
            print(f"    round {round_number} of {runs} done", flush=True)
    timings = {key: Timing(key, name, samples[key]) for key, name, _ in jobs}
    for timing in timings.values():
        runs_ms = ", ".join(f"{ms:,.1f}" for ms in timing.samples)
        print(f"  {timing.key}  {timing.name}: {runs_ms} ms", flush=True)
    return timings, results


async def _plain_contribution(
    conn: asyncpg.Connection, tb: int, start: date, end: date, as_of: datetime
) -> dict[str, list[asyncpg.Record]]:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return {
            "series": await conn.fetch(PLAIN_CONTRIBUTION_SERIES, tb, start, end, as_of),
            "categories": await conn.fetch(PLAIN_CONTRIBUTION_CATEGORIES, tb, start, end, as_of),
            "flows": await conn.fetch(PLAIN_CONTRIBUTION_FLOWS, tb, start, end, as_of),
        }


TOTALS_CHECKED = ("minutes", "exchanges", "active")
FIGURES_CHECKED = (
    "minutes",
    "exchanges",
    "participants",
    "active",
    "new",
    "reciprocal",
    "ties",
    "two_way_ties",
    "first_exchanges",
    "median_days_to_first_exchange",
)
RECIPROCITY_CHECKED = (
    "participant_id",
    "given_minutes",
    "received_minutes",
    "exchanges_given",
    "exchanges_received",
    "partners",
)


def _plain_figures(row: asyncpg.Record) -> dict[str, Any]:
    figures = {name: row[name] for name in FIGURES_CHECKED if name in row}
    median = row["median_days"]
    figures["median_days_to_first_exchange"] = None if median is None else float(median)
    return figures


def _differences(where: str, service: dict[str, Any], plain: dict[str, Any]) -> list[str]:
    found = []
    for name, value in plain.items():
        mine = service.get(name)
        same = (
            mine is None and value is None
            if mine is None or value is None
            else math.isclose(float(mine), float(value), rel_tol=1e-9, abs_tol=1e-9)
        )
        if not same:
            found.append(f"{where} {name}: service {mine}, plain SQL {value}")
    return found


def _check_contribution(
    report: ContributionReport, plain: dict[str, list[asyncpg.Record]]
) -> tuple[list[str], list[str]]:
    """Differences in the totals named by the brief, and in every figure of every row."""
    whole = next(row for row in plain["series"] if row["whole"])
    months = [row for row in plain["series"] if not row["whole"]]
    totals = report.totals.model_dump()
    in_totals = _differences("totals", totals, {name: whole[name] for name in TOTALS_CHECKED})
    everywhere = _differences("totals", totals, _plain_figures(whole))
    if [(b.start, b.end) for b in report.series] != [
        (row["first_day"], row["last_day"]) for row in months
    ]:
        everywhere.append("series: the months differ")
    else:
        for bucket, row in zip(report.series, months, strict=True):
            everywhere += _differences(str(bucket.start), bucket.model_dump(), _plain_figures(row))
    for name, key in (("categories", "category"), ("flows", None)):
        mine = {
            (r.category if key else (r.giver_kind, r.receiver_kind)): r.model_dump()
            for r in getattr(report, name)
        }
        theirs = {
            (row["category"] if key else (row["giver_kind"], row["receiver_kind"])): row
            for row in plain[name]
        }
        if set(mine) != set(theirs):
            everywhere.append(f"{name}: different rows")
            continue
        for label, row in theirs.items():
            everywhere += _differences(
                f"{name} {label}",
                mine[label],
                {figure: row[figure] for figure in ("minutes", "exchanges", "people")},
            )
    return in_totals, everywhere


def _check_reciprocity(report: ReciprocityReport, plain: list[asyncpg.Record]) -> list[str]:
    if len(report.rows) != len(plain):
        return [f"{len(report.rows)} rows from the service, {len(plain)} from plain SQL"]
    found: list[str] = []
    for row, theirs in zip(report.rows, plain, strict=True):
        found += _differences(
            f"participant {theirs['participant_id']}",
            row.model_dump(),
            {name: theirs[name] for name in RECIPROCITY_CHECKED},
        )
    return found


async def _explain(
    conn: asyncpg.Connection, breakdown: dict[str, list[tuple[str, float, str, Any]]]
) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement the service sent for a, c and d, with the
    parameters of its last run, twice: planned for those values (a custom plan, as on the
    first five runs of a prepared statement), and as the generic plan PostgreSQL may switch a
    prepared statement to from its sixth run on, as it does on the service's pooled
    connections (PREPARE, then EXECUTE under plan_cache_mode = force_generic_plan)."""
    lines: list[str] = []
    for key, statements in breakdown.items():
        for name, ms, sql, parameters in statements:
            if sql.split()[0].upper() not in ("SELECT", "WITH") or ms < 1:
                continue
            values = _positional(parameters)
            attempts = [
                ("custom", "force_custom_plan", "EXPLAIN (ANALYZE, BUFFERS) " + sql, values),
                (
                    "generic",
                    "force_generic_plan",
                    "EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_plan("
                    + ", ".join(_literal(value) for value in values)
                    + ")",
                    [],
                ),
            ]
            await conn.execute("PREPARE bench_plan AS " + sql)
            try:
                for plan, mode, explain, arguments in attempts:
                    await conn.execute(f"SET plan_cache_mode = {mode}")
                    lines += ["", f"  ===== {key}: {name} ({ms:.1f} ms in the runs), {plan} plan"]
                    try:
                        rows = await conn.fetch(explain, *arguments)
                    except asyncpg.PostgresError as error:
                        lines.append(f"  (could not explain: {error})")
                        continue
                    lines += [f"  {row[0]}" for row in rows]
            finally:
                await conn.execute("DEALLOCATE bench_plan")
    await conn.execute("SET plan_cache_mode = force_custom_plan")
    return lines


def _positional(parameters: Any) -> list[Any]:
    if isinstance(parameters, dict):
        return list(parameters.values())
    return list(parameters or ())


def _literal(value: Any) -> str:
    """A parameter's value as an SQL literal of unknown type (PostgreSQL takes it as the type
    the prepared statement expects)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        text = "{" + ",".join("NULL" if item is None else f'"{item}"' for item in value) + "}"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = str(value)
    return "'" + text.replace("'", "''") + "'"


def _check_everyone(
    everyone: ReciprocityReport, one: ReciprocityReport, contribution: ContributionReport
) -> list[str]:
    """Every counted exchange has one giver and one receiver: everyone's given (and received)
    minutes and exchanges add up to the contribution totals; and c's row is d's row."""
    totals = contribution.totals
    found = []
    for side in ("given", "received"):
        minutes = sum(getattr(row, f"{side}_minutes") for row in everyone.rows)
        exchanges = sum(getattr(row, f"exchanges_{side}") for row in everyone.rows)
        if minutes != totals.minutes or exchanges != totals.exchanges:
            found.append(
                f"{side}: {minutes} minutes in {exchanges} exchanges, but the contribution "
                f"report counts {totals.minutes} in {totals.exchanges}"
            )
    rows = {row.participant_id: row for row in everyone.rows}
    for row in one.rows:
        if rows.get(row.participant_id) != row:
            found.append(f"participant {row.participant_id}: c and d differ")
    return found


def _last_full_months(today: date, months: int = 12) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    month = end.month - months  # zero-based month index of the first month
    return date(end.year + month // 12, month % 12 + 1, 1), end


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _summary(found: list[str]) -> str:
    if not found:
        return "OK"
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    return "MISMATCH: " + "; ".join(found[:3]) + more


async def run_reports_benchmark(
    *,
    participants: int = 10_000,
    exchanges: int = 1_000_000,
    years: int = 3,
    runs: int = 7,
    explain: bool = False,
    keep: Path | None = None,
) -> dict:
    """Build a timebank of ``participants`` and ``exchanges`` over ``years`` on a fresh
    embedded PostgreSQL, time each report against the plainest correct SQL (median of
    ``runs`` after a warm-up), print a table and return the figures. With ``keep``, the
    embedded PostgreSQL lives in that directory and stays there; a timebank built by an
    earlier run in it is measured again (after migrating it) instead of being rebuilt."""
    if participants < 4 or exchanges < 1 or years < 1 or runs < 1:
        raise ValueError("need participants >= 4, exchanges >= 1, years >= 1 and runs >= 1")
    progress = _Progress()
    if keep is None:
        print("starting a fresh embedded PostgreSQL and migrating it ...", flush=True)
        url = await asyncio.to_thread(_start_server)
    else:
        print(f"starting the embedded PostgreSQL kept in {keep} and migrating it ...", flush=True)
        url = await asyncio.to_thread(embedded.start, keep)
    await migrations.upgrade_async(url)
    dsn = asyncpg_dsn(url)
    version, _ = await _server_facts(dsn)
    progress.say(f"PostgreSQL {version} ready")

    settings = Settings(database_url=url, db_pool_size=2, db_max_overflow=0)
    engine = create_engine(url, settings)
    try:
        built_before = await _built_before(dsn) if keep is not None else None
        if built_before is not None:
            built = built_before
            participants = len(built.participant_ids)
            progress.say(
                f"measuring the timebank built earlier in {keep}: {participants:,} participants,"
                f" {built.exchanges:,} approved exchanges"
            )
        else:
            print(
                f"building a timebank of {participants:,} participants and {exchanges:,} "
                f"approved exchanges over {years} years ...",
                flush=True,
            )
            built = await _build(
                dsn,
                Participants(engine),
                participants=participants,
                exchanges=exchanges,
                years=years,
                progress=progress,
            )
            progress.say(f"built in {built.seconds:.1f} s")

        conn = await asyncpg.connect(dsn)
        # The plain SQL is planned for its own parameters every time, as psql would run it:
        # a prepared statement's generic plan can be far worse (minutes rather than seconds,
        # for the reciprocity of everyone), and the baseline should not lose by accident.
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        try:
            # One moment for every run; reports never count later than settle seconds ago, so
            # wait until T is that far behind.
            as_of: datetime = await conn.fetchval("SELECT clock_timestamp()")
            settle = settings.report_settle_seconds
            behind = await conn.fetchval("SELECT clock_timestamp()") - as_of
            wait = settle + 0.2 - behind.total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            start, end = _last_full_months(date.today())
            tb = built.timebank_id
            busiest = await conn.fetchrow(_BUSIEST_MEMBER, tb, start, end, as_of)
            one = busiest["participant_id"] if busiest else built.participant_ids[0]
            one_exchanges = busiest["exchanges"] if busiest else 0

            reports = Reports(engine, settings)
            access = TimebankAccess(
                principal=Principal(
                    user_id=0, email="bench@example.org", is_admin=True, token_id=0
                ),
                timebank_id=tb,
                timebank_slug=SLUG,
                roles=frozenset({"coordinator"}),
            )
            print(
                f"measuring {start} .. {end} as of {as_of.astimezone(UTC):%Y-%m-%d %H:%M:%S} "
                f"UTC: one warm-up, then {runs} rounds of every report in turn ...",
                flush=True,
            )

            def contribution(view: View) -> Callable[[], Awaitable[ContributionReport]]:
                if view == "funder":  # published for a whole closed year, as of its release
                    year = date(end.year - 1, 1, 1), date(end.year - 1, 12, 31)
                    release = Release(as_of=as_of, through=year[1])
                    return lambda: reports.funder_contribution(
                        access, start=year[0], end=year[1], release=release
                    )
                return lambda: reports.contribution(
                    access, start=start, end=end, as_of=as_of, interval="month", view=view
                )

            def reciprocity(pid: int | None) -> Callable[[], Awaitable[ReciprocityReport]]:
                return lambda: reports.reciprocity(
                    access, start=start, end=end, as_of=as_of, participant_id=pid
                )

            jobs: list[Job] = [
                ("a", "Reports.contribution, month, full view", contribution("full")),
                ("b", "Reports.contribution, month, funder view", contribution("funder")),
                ("c", "Reports.reciprocity, one participant", reciprocity(one)),
                ("d", "Reports.reciprocity, everyone", reciprocity(None)),
                (
                    "e",
                    "plain SQL for a (3 queries)",
                    lambda: _plain_contribution(conn, tb, start, end, as_of),
                ),
                (
                    "f",
                    "plain SQL for c",
                    lambda: conn.fetch(PLAIN_RECIPROCITY_ONE, tb, start, end, as_of, one),
                ),
            ]
            clock = _StatementClock(engine)
            timings, results = await _measure(jobs, runs, clock)
            a, b, c, d, e, f = (timings[key] for key in "abcdef")
            breakdown = {key: clock.breakdown(key) for key in "acd"}
            plans = await _explain(conn, breakdown) if explain else []
            full, plain = results["a"], results["e"]
            mine_one, plain_one = results["c"], results["f"]
            mine_all = results["d"]
        finally:
            await conn.close()
    finally:
        await engine.dispose()

    in_totals, everywhere = _check_contribution(full, plain)
    one_found = _check_reciprocity(mine_one, plain_one)
    all_found = _check_everyone(mine_all, mine_one, full)
    ratios = {
        "a": e.median / a.median,
        "b": e.median / b.median,
        "c": f.median / c.median,
    }
    targets = {
        "contribution_ms": a.median <= TARGET_CONTRIBUTION_MS,
        "contribution_funder_ms": b.median <= TARGET_CONTRIBUTION_MS,
        "contribution_ratio": ratios["a"] >= TARGET_CONTRIBUTION_RATIO,
        "reciprocity_one_ms": c.median <= TARGET_RECIPROCITY_MS,
    }
    plain_of = {"a": "e", "b": "e", "c": "f"}

    print()
    print("Reports benchmark: milliseconds per report on a fresh embedded PostgreSQL")
    print(
        f"  PostgreSQL {version}; {participants:,} participants; {built.exchanges:,} approved "
        f"exchanges over {years} years ({built.reversed:,} of them reversed); "
        + (f"built in {built.seconds:.1f} s" if built.phases else f"built earlier in {keep}")
    )
    print(
        f"  period {start} .. {end} (monthly series; {full.totals.exchanges:,} exchanges count "
        f"in it), as of "
        f"{as_of.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC; one participant = the busiest member "
        f"(#{one}, {one_exchanges:,} exchanges in the period)"
    )
    print(
        f"  median of {runs} interleaved rounds after one warm-up; wall time as the caller sees "
        "it; plain SQL planned afresh each time (force_custom_plan)"
    )
    print()
    print(f"  {'report':<46}{'median ms':>11}{'min ms':>10}{'max ms':>10}{'plain/report':>14}")
    for timing in (a, b, c, d, e, f):
        ratio = ratios.get(timing.key)
        shown = f"{ratio:>9.1f} ({plain_of[timing.key]}/{timing.key})" if ratio else ""
        print(
            f"  {timing.key}  {timing.name:<43}{timing.median:>11.1f}"
            f"{min(timing.samples):>10.1f}{max(timing.samples):>10.1f}{shown:>14}"
        )
    print()
    print(f"  check e vs a, totals (minutes, exchanges, active): {_summary(in_totals)}")
    print(f"  check e vs a, every figure of every month, category and flow: {_summary(everywhere)}")
    print(f"  check f vs c: {_summary(one_found)}")
    print(
        "  check d against a and c (given minutes and exchanges add up to a's totals; "
        f"c's row is in it): {_summary(all_found)}"
    )
    print()
    print("  targets (issue 4, item 7):")
    print(
        f"    contribution for a year <= {TARGET_CONTRIBUTION_MS:g} ms (a): {a.median:.1f} ms: "
        f"{_verdict(targets['contribution_ms'])}"
    )
    print(
        f"    the same in the funder view (b): {b.median:.1f} ms: "
        f"{_verdict(targets['contribution_funder_ms'])}"
    )
    print(
        f"    contribution >= {TARGET_CONTRIBUTION_RATIO:g}x faster than the plain SQL (e/a): "
        f"{ratios['a']:.1f}x: {_verdict(targets['contribution_ratio'])}"
    )
    print(
        f"    reciprocity for one person <= {TARGET_RECIPROCITY_MS:g} ms (c): {c.median:.1f} ms: "
        f"{_verdict(targets['reciprocity_one_ms'])}"
    )

    print()
    print("  where the service's time goes (median ms of each SQL statement it sent, in order):")
    for key, timing in (("a", a), ("c", c), ("d", d)):
        statements = breakdown[key]
        if not statements:
            continue
        in_sql = sum(ms for _, ms, _, _ in statements)
        print(
            f"    {key}: {timing.median:.1f} ms, of which {in_sql:.1f} ms in "
            f"{len(statements)} statement(s): "
            + ", ".join(f"{name} {ms:.1f}" for name, ms, _, _ in statements)
        )
    for line in plans:
        print(line)

    return {
        "config": {
            "participants": participants,
            "exchanges": exchanges,
            "years": years,
            "runs": runs,
            "postgresql_version": version,
            "period": [start.isoformat(), end.isoformat()],
            "as_of": as_of.isoformat(),
            "participant_id": one,
        },
        "build": {
            "seconds": round(built.seconds, 1),
            "phases_s": {name: round(s, 1) for name, s in built.phases.items()},
            "exchanges": built.exchanges,
            "reversed": built.reversed,
        },
        "timings": {t.key: t.as_dict() for t in (a, b, c, d, e, f)},
        "ratios": {key: round(value, 2) for key, value in ratios.items()},
        "checks": {
            "totals_ok": not in_totals,
            "every_figure_ok": not everywhere,
            "reciprocity_one_ok": not one_found,
            "reciprocity_everyone_ok": not all_found,
            "differences": (in_totals + everywhere + one_found + all_found)[:50],
        },
        "targets_met": targets,
        "statements_ms": {
            key: [[name, round(ms, 2)] for name, ms, _, _ in statements]
            for key, statements in breakdown.items()
        },
    }
