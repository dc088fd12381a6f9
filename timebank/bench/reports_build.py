"""Writing the reports benchmark's timebank: participants, transfers, exchanges, reversals.

The timebank
    One timebank (the benchmarks' wide limits, ``floor.WIDE_LIMITS``) with ``participants``
    participants of all three kinds and ``exchanges`` approved exchanges whose service dates
    fall within the last ``years`` years (up to today), every one of them real: a posted
    ledger transfer each (``ledger_post_batch``, in chunks), the exchange row inserted as
    'logged' and then moved to 'approved' with its transfer (PostgreSQL stamps
    ``approved_at``), and about 1% of them reversed afterwards through ``ledger_reverse``
    (PostgreSQL stamps ``reversed_at``). Participants and exchanges are written by set-based
    SQL rather than through the services, which would take hours; the schema's constraints and
    triggers apply all the same. A final query checks that every exchange matches its transfer
    (and its reversal) account for account and minute for minute.


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

"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import asyncpg

from timebank.bench.floor import CEILING_MINUTES, FLOOR_MINUTES, WIDE_LIMITS
from timebank.bench.reports_town import KIND_ACTIVITY, generate_town, plan_exchanges
from timebank.ledger import repository as ledger_repository
from timebank.participants.schemas import DEFAULT_CATEGORIES
from timebank.participants.service import Participants
from timebank.reports.queue import apply_queued

SLUG = "bench-reports"
REVERSED_SHARE = 0.01
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


class Progress:
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
class Built:
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


async def built_before(dsn: str) -> Built | None:
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
    return Built(
        timebank_id, [row["id"] for row in ids], counts["approved"], counts["reversed"], 0.0, {}
    )


async def build_timebank(
    dsn: str,
    participants_service: Participants,
    *,
    participants: int,
    exchanges: int,
    years: int,
    progress: Progress,
) -> Built:
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
    town = generate_town(participants, first_day, last_day, rng)
    plan = plan_exchanges(town, exchanges, first_day, last_day, rng)
    phase("generate")
    progress.say(f"generated {len(plan):,} exchanges from {date.fromordinal(first_day)} on")

    timebank = await participants_service.create_timebank(
        SLUG,
        "Reports benchmark",
        WIDE_LIMITS,
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
                ids = await ledger_repository.post_many(
                    conn,
                    tb,
                    debits=[account[plan.receiver[i]] for i in chunk],
                    credits=[account[plan.giver[i]] for i in chunk],
                    minutes=[plan.minutes[i] for i in chunk],
                    memos=[memo[plan.category[i]] for i in chunk],
                )
                if len(ids) != len(chunk):
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
                        ids = await ledger_repository.reverse_many(
                            conn, tb, [transfer_of[i] for i in picked], [reasons[i] for i in picked]
                        )
                    reversal_of.update(zip(picked, ids, strict=True))

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
    return Built(
        timebank_id=tb,
        participant_ids=pid,
        exchanges=int(check["exchanges"]),
        reversed=int(check["reversed"]),
        seconds=sum(phases.values()),
        phases=phases,
    )
