"""Many connections at once on a few hot accounts with tight limits (DESIGN.md §6): nothing is
created, lost or counted twice, no account ever leaves its limits, every refusal is typed, and
a race to resolve the same reversal, reservation or idempotency key has exactly one winner."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import unique_slug
from timebank.db.engine import sqlalchemy_url
from timebank.errors import (
    IdempotencyMismatch,
    InvalidTransition,
    LimitExceeded,
    ValidationFailed,
)
from timebank.ledger import IdempotencyKey, Ledger, TransferRequest
from timebank.ledger.audit import audit
from timebank.ledger.schemas import DepartureRecord, GiftRecord, OpeningRecord
from timebank.participants.schemas import TimebankPolicy, TimebankRecord
from timebank.participants.service import Participants

WORKERS = 32
OPERATIONS_PER_WORKER = 25
HOT_ACCOUNTS = 5
FLOOR, CEILING, MAXIMUM = -120, 120, 90
TIGHT = TimebankPolicy(
    default_floor_minutes=FLOOR,
    default_ceiling_minutes=CEILING,
    max_exchange_minutes=MAXIMUM,
    welcome_grant_minutes=0,
)


@pytest.fixture
async def wide_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine of its own with room for every worker to hold a connection at once."""
    engine = create_async_engine(sqlalchemy_url(database_url), pool_size=40, max_overflow=0)
    await _warm(engine, 40)
    yield engine
    await engine.dispose()


async def _warm(engine: AsyncEngine, connections: int) -> None:
    """Open the pool's connections up front, so the workers start together rather than
    one connection handshake after another."""
    barrier = asyncio.Barrier(connections)

    async def hold() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await barrier.wait()

    await asyncio.wait_for(asyncio.gather(*(hold() for _ in range(connections))), timeout=30)


async def _hot_timebank(engine: AsyncEngine) -> tuple[TimebankRecord, list[int]]:
    participants = Participants(engine)
    tb = await participants.create_timebank(unique_slug("hot"), "Hot Accounts", TIGHT)
    members = [await participants.enrol(tb, "member", f"Hot {n}") for n in range(HOT_ACCOUNTS)]
    return tb, [m.account_id for m in members]


async def _audit(engine: AsyncEngine, slug: str):
    async with engine.connect() as conn:
        return await audit(conn, slug)


@dataclass
class Acknowledged:
    """What the service said yes to, as its callers saw it."""

    transfers: list[tuple[int, int, int, int]] = field(default_factory=list)  # id, from, to, min
    reservations: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    reservation_states: dict[int, str] = field(default_factory=dict)
    keys: set[tuple[str, str]] = field(default_factory=set)
    limit_hits: int = 0
    operations: int = 0


async def _worker(
    n: int, ledger: Ledger, tb: TimebankRecord, accounts: list[int], ack: Acknowledged
) -> None:
    """Random posts, reservations, postings and voids of its own reservations, and reversals
    of its own transfers, each under a key of its own. Only LimitExceeded is an acceptable
    refusal: anything else propagates and fails the test."""
    rng = random.Random(f"worker-{n}")
    open_reservations: list[int] = []
    reversible: list[tuple[int, int, int, int]] = []
    for i in range(OPERATIONS_PER_WORKER):
        key = IdempotencyKey(author=f"worker:{n}", key=f"op-{i}")
        debit, credit = rng.sample(accounts, 2)
        minutes = rng.randint(1, 60) if rng.random() < 0.8 else rng.randint(61, MAXIMUM)
        roll = rng.random()
        ack.operations += 1
        try:
            if roll < 0.20:
                reserved = await ledger.reserve(tb.id, debit, credit, minutes, key=key)
                assert not reserved.replayed
                ack.reservations[reserved.pending.id] = (debit, credit, minutes)
                ack.reservation_states[reserved.pending.id] = "pending"
                open_reservations.append(reserved.pending.id)
            elif roll < 0.32 and open_reservations:
                pending_id = open_reservations.pop(rng.randrange(len(open_reservations)))
                posted = await ledger.post_pending(tb.id, pending_id, key=key)
                assert not posted.replayed
                assert posted.transfer.pending_transfer_id == pending_id
                ack.reservation_states[pending_id] = "posted"
                t = posted.transfer
                ack.transfers.append((t.id, t.debit_account_id, t.credit_account_id, t.minutes))
                reversible.append(ack.transfers[-1])
            elif roll < 0.40 and open_reservations:
                pending_id = open_reservations.pop(rng.randrange(len(open_reservations)))
                voided = await ledger.void_pending(tb.id, pending_id, key=key)
                assert not voided.replayed and voided.pending.state == "voided"
                ack.reservation_states[pending_id] = "voided"
            elif roll < 0.47 and reversible:
                original = reversible.pop(rng.randrange(len(reversible)))
                reversal = await ledger.reverse(tb.id, original[0], "entered twice", key=key)
                assert not reversal.replayed
                t = reversal.transfer
                assert (t.debit_account_id, t.credit_account_id, t.minutes) == (
                    original[2],
                    original[1],
                    original[3],
                )
                ack.transfers.append((t.id, t.debit_account_id, t.credit_account_id, t.minutes))
            else:
                posted = await ledger.post_transfer(tb.id, debit, credit, minutes, key=key)
                assert not posted.replayed
                t = posted.transfer
                assert (t.debit_account_id, t.credit_account_id, t.minutes) == (
                    debit,
                    credit,
                    minutes,
                )
                ack.transfers.append((t.id, debit, credit, minutes))
                reversible.append(ack.transfers[-1])
        except LimitExceeded:
            ack.limit_hits += 1
            continue
        ack.keys.add((key.author, key.key))


async def test_many_connections_on_hot_accounts_keep_every_invariant(wide_engine):
    async with wide_engine.connect() as conn:
        max_connections = int((await conn.execute(text("SHOW max_connections"))).scalar_one())
    assert max_connections > 40 + 20, "the server must allow every worker its connection"

    tb, accounts = await _hot_timebank(wide_engine)
    ledger = Ledger(wide_engine)
    ack = Acknowledged()

    peak = 0
    done = asyncio.Event()

    async def watch_the_pool() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, wide_engine.pool.checkedout())  # type: ignore[attr-defined]
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch_the_pool())
    try:
        await asyncio.wait_for(
            asyncio.gather(*(_worker(n, ledger, tb, accounts, ack) for n in range(WORKERS))),
            timeout=60,
        )
    finally:
        done.set()
        await watcher

    assert peak >= WORKERS, f"only {peak} connections were ever in use at once"
    assert ack.limit_hits > 0, "the limits were never reached: the test is not tight enough"
    assert len(ack.transfers) > WORKERS, "too few transfers went through to prove anything"

    report = await _audit(wide_engine, tb.slug)
    assert report.ok, [str(f) for f in report.findings]

    async with wide_engine.connect() as conn:
        params = {"tb": tb.id}

        # I5: no direct posting ever took an account further outside its limits (reversals
        # always post, flagging the account; a posted reservation was checked when made).
        outside = (
            await conn.execute(
                text(
                    "SELECT p.id, p.account_id, p.balance_after, a.floor, a.ceiling"
                    " FROM (SELECT q.*, lag(q.balance_after, 1, CAST(0 AS bigint)) OVER"
                    "         (PARTITION BY q.account_id ORDER BY q.account_version) AS before"
                    "       FROM postings q WHERE q.timebank_id = :tb) p"
                    " JOIN accounts a ON a.id = p.account_id"
                    " JOIN transfers t ON t.id = p.transfer_id"
                    " WHERE t.kind <> 'reversal' AND t.pending_transfer_id IS NULL"
                    "   AND ((p.balance_after < a.floor AND p.balance_after < p.before)"
                    "     OR (p.balance_after > a.ceiling AND p.balance_after > p.before))"
                ),
                params,
            )
        ).all()
        assert outside == []

        # Exactly the acknowledged transfers are stored, each once, with its amounts.
        stored = {
            row.id: (row.id, row.debit_account_id, row.credit_account_id, row.minutes)
            for row in await conn.execute(
                text(
                    "SELECT id, debit_account_id, credit_account_id, minutes FROM transfers"
                    " WHERE timebank_id = :tb"
                ),
                params,
            )
        }
        acknowledged_ids = [t[0] for t in ack.transfers]
        assert len(acknowledged_ids) == len(set(acknowledged_ids)), "an id was acknowledged twice"
        assert set(stored) - set(acknowledged_ids) == set(), "transfers nobody acknowledged"
        assert set(acknowledged_ids) - set(stored) == set(), "acknowledged transfers were lost"
        assert {t[0]: t for t in ack.transfers} == stored

        # Reservations: exactly the acknowledged ones, each in the state its worker left it.
        reservations = {
            row.id: ((row.debit_account_id, row.credit_account_id, row.minutes), row.state)
            for row in await conn.execute(
                text(
                    "SELECT id, debit_account_id, credit_account_id, minutes, state"
                    " FROM pending_transfers WHERE timebank_id = :tb"
                ),
                params,
            )
        }
        assert reservations == {
            pid: (ack.reservations[pid], ack.reservation_states[pid]) for pid in ack.reservations
        }

        # Balances and pending amounts follow from what was acknowledged; they sum to zero.
        expected = {a: [0, 0, 0] for a in accounts}  # balance, pending in, pending out
        for _, debit, credit, minutes in ack.transfers:
            expected[debit][0] -= minutes
            expected[credit][0] += minutes
        for pid, (debit, credit, minutes) in ack.reservations.items():
            if ack.reservation_states[pid] == "pending":
                expected[credit][1] += minutes
                expected[debit][2] += minutes
        balances = {
            row.id: [row.balance, row.pending_in, row.pending_out]
            for row in await conn.execute(
                text(
                    "SELECT id, balance, pending_in, pending_out FROM accounts"
                    " WHERE timebank_id = :tb AND participant_id IS NOT NULL"
                ),
                params,
            )
        }
        assert balances == expected
        total = (
            await conn.execute(
                text("SELECT sum(balance) FROM accounts WHERE timebank_id = :tb"), params
            )
        ).scalar_one()
        assert total == 0

        # I8: a key is stored for each accepted request and for nothing else.
        keys = {
            (row.author, row.key)
            for row in await conn.execute(
                text("SELECT author, key FROM idempotency_keys WHERE timebank_id = :tb"), params
            )
        }
        assert keys == ack.keys


async def _race(calls: list[Callable[[], Awaitable[object]]]) -> list[object]:
    """Start every call at the same moment; return each one's result or exception."""
    gate = asyncio.Event()

    async def run(call: Callable[[], Awaitable[object]]) -> object:
        await gate.wait()
        return await call()

    tasks = [asyncio.ensure_future(run(call)) for call in calls]
    await asyncio.sleep(0)
    gate.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


def _one_winner(outcomes: list[object], expected_error: type[Exception]) -> object:
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, BaseException)]
    wrong = [f"{type(o).__name__}: {o}" for o in losers if type(o) is not expected_error]
    assert wrong == [], f"expected {expected_error.__name__} for every loser, got {wrong}"
    assert len(winners) == 1, f"{len(winners)} winners: {winners}"
    return winners[0]


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param("roomy", id="reversal-would-fit-twice"),
        pytest.param("at-the-limit", id="a-second-reversal-would-break-a-floor"),
    ],
)
async def test_twenty_concurrent_reversals_have_one_winner(wide_engine, setup):
    tb, (a, b, c, *_) = await _hot_timebank(wide_engine)
    ledger = Ledger(wide_engine)
    if setup == "at-the-limit":
        await ledger.post_transfer(tb.id, b, c, 80)  # b at -80
    original = await ledger.post_transfer(tb.id, a, b, 80)  # a at -80, b at 0 (or +80)
    # Reversing once takes b back to -80 (or 0); a second reversal would take b to -160,
    # below the floor of -120, in the "at-the-limit" setup. Either way, the answer to every
    # request but one must be "already reversed".
    outcomes = await _race(
        [
            lambda n=n: ledger.reverse(tb.id, original.transfer.id, f"duplicate entry {n}")
            for n in range(20)
        ]
    )
    winner = _one_winner(outcomes, InvalidTransition)
    assert winner.transfer.reverses_transfer_id == original.transfer.id  # type: ignore[attr-defined]

    report = await _audit(wide_engine, tb.slug)
    assert report.ok, [str(f) for f in report.findings]
    async with wide_engine.connect() as conn:
        reversals = (
            await conn.execute(
                text("SELECT count(*) FROM transfers WHERE reverses_transfer_id = :id"),
                {"id": original.transfer.id},
            )
        ).scalar_one()
    assert reversals == 1
    assert (await ledger.balance(tb.id, a)).balance_minutes == 0


@pytest.mark.parametrize("racers", ["post", "post-and-void"])
async def test_twenty_concurrent_resolutions_of_a_reservation_have_one_winner(wide_engine, racers):
    tb, (a, b, *_) = await _hot_timebank(wide_engine)
    ledger = Ledger(wide_engine)
    pending = await ledger.reserve(tb.id, a, b, 90)
    pending_id = pending.pending.id

    def resolve(n: int) -> Callable[[], Awaitable[object]]:
        if racers == "post-and-void" and n % 2:
            return lambda: ledger.void_pending(tb.id, pending_id)
        return lambda: ledger.post_pending(tb.id, pending_id)

    outcomes = await _race([resolve(n) for n in range(20)])
    _one_winner(outcomes, InvalidTransition)

    report = await _audit(wide_engine, tb.slug)
    assert report.ok, [str(f) for f in report.findings]
    async with wide_engine.connect() as conn:
        state, transfers = (
            await conn.execute(
                text(
                    "SELECT p.state, (SELECT count(*) FROM transfers t"
                    "                  WHERE t.pending_transfer_id = p.id)"
                    " FROM pending_transfers p WHERE p.id = :id"
                ),
                {"id": pending_id},
            )
        ).one()
    assert (state, transfers) in {("posted", 1), ("voided", 0)}
    balance = await ledger.balance(tb.id, a)
    assert balance.pending_out_minutes == 0
    assert balance.balance_minutes == (-90 if state == "posted" else 0)


async def test_twenty_concurrent_taps_with_one_key_post_once(wide_engine):
    """A member tapping "log" over and over on a slow phone: the same key, sometimes with the
    form changed in between. One request wins; its twins replay it; the others are refused."""
    tb, (a, b, *_) = await _hot_timebank(wide_engine)
    ledger = Ledger(wide_engine)
    key = IdempotencyKey(author="member:1", key="log-exchange")
    minutes = [30 if n % 4 else 45 for n in range(20)]
    outcomes = await _race(
        [lambda m=m: ledger.post_transfer(tb.id, a, b, m, key=key) for m in minutes]
    )
    accepted = [
        (m, o) for m, o in zip(minutes, outcomes, strict=True) if not isinstance(o, Exception)
    ]
    refused = [(m, o) for m, o in zip(minutes, outcomes, strict=True) if isinstance(o, Exception)]
    assert accepted, refused
    winning_minutes = accepted[0][1].transfer.minutes  # type: ignore[attr-defined]
    assert {m for m, _ in accepted} == {winning_minutes}
    assert len({o.transfer.id for _, o in accepted}) == 1  # type: ignore[attr-defined]
    assert sum(not o.replayed for _, o in accepted) == 1  # type: ignore[attr-defined]
    assert len(accepted) == minutes.count(winning_minutes)
    assert all(type(o) is IdempotencyMismatch for _, o in refused), refused
    assert {m for m, _ in refused} <= {30, 45} - {winning_minutes}

    async with wide_engine.connect() as conn:
        count = (
            await conn.execute(
                text("SELECT count(*) FROM transfers WHERE timebank_id = :tb"), {"tb": tb.id}
            )
        ).scalar_one()
    assert count == 1
    assert (await ledger.balance(tb.id, b)).balance_minutes == winning_minutes


async def test_batches_and_single_transfers_at_once_keep_every_invariant(wide_engine):
    """Batches lock all their accounts at once: mixed with single transfers on the same hot
    accounts they neither deadlock visibly nor pass a limit at any step."""
    tb, accounts = await _hot_timebank(wide_engine)
    ledger = Ledger(wide_engine)
    acknowledged: list[int] = []

    async def batcher(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(8):
            steps = []
            for _ in range(rng.randint(2, 6)):
                debit, credit = rng.sample(accounts, 2)
                steps.append(TransferRequest(debit, credit, rng.randint(1, MAXIMUM)))
            try:
                batch = await ledger.post_batch(tb.id, steps)
            except LimitExceeded:
                continue
            acknowledged.extend(t.id for t in batch.transfers)

    async def single(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(15):
            debit, credit = rng.sample(accounts, 2)
            try:
                posted = await ledger.post_transfer(tb.id, debit, credit, rng.randint(1, MAXIMUM))
            except LimitExceeded:
                continue
            acknowledged.append(posted.transfer.id)

    await asyncio.gather(*(batcher(n) for n in range(16)), *(single(100 + n) for n in range(16)))

    report = await _audit(wide_engine, tb.slug)
    assert report.ok, report.findings
    async with wide_engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT id FROM transfers WHERE timebank_id = :tb"), {"tb": tb.id}
            )
        ).scalars()
        outside = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM postings p JOIN accounts a ON a.id = p.account_id"
                    " WHERE p.timebank_id = :tb"
                    "   AND (p.balance_after < a.floor OR p.balance_after > a.ceiling)"
                ),
                {"tb": tb.id},
            )
        ).scalar_one()
    assert sorted(stored) == sorted(acknowledged)
    assert len(acknowledged) > 0
    assert outside == 0


# The pot's writes at once: gifts, grants, opening balances and leavings -----------------------

POT_TASKS = 16
POT_OPERATIONS = 12
POT_MEMBERS = 8
LEAVERS = 3  # the first three members may leave; the others stay to the end


@dataclass
class PotAcknowledged:
    """Every write the service said yes to, by the key it was sent under."""

    answers: dict[tuple[str, str], tuple[Callable[[], Awaitable[Any]], Any]] = field(
        default_factory=dict
    )
    new: list[Any] = field(default_factory=list)  # answers that wrote something (not replays)
    refusals: dict[str, int] = field(default_factory=dict)


async def _pot_task(
    n: int, ledger: Ledger, tb: TimebankRecord, members: list[tuple[int, int]], ack: PotAcknowledged
) -> None:
    """Random gifts (to a member or the pot), grants, opening balances and leavings, each under
    a key of its own. A write refused is tried once more under the same key (a client retrying
    after an error); a write sometimes goes twice at once under one key (a double tap). Only
    limit, closed-account, already-set and debt refusals are acceptable: anything else fails
    the test."""
    rng = random.Random(f"pot-{n}")
    people = [pid for pid, _ in members]
    for i in range(POT_OPERATIONS):
        key = IdempotencyKey(author=f"task:{n}", key=f"op-{i}")
        a, b = rng.sample(people, 2)
        minutes = rng.randint(1, 90)
        roll = rng.random()
        write: Callable[[], Awaitable[Any]]
        if roll < 0.35:
            write = functools.partial(ledger.gift, tb.id, a, b, minutes, note="thanks", key=key)
        elif roll < 0.50:
            write = functools.partial(ledger.gift, tb.id, a, None, minutes, key=key)
        elif roll < 0.70:
            write = functools.partial(ledger.gift, tb.id, None, a, minutes, note="help", key=key)
        elif roll < 0.82:
            opening = rng.choice([-60, -30, 0, 30, 60])
            write = functools.partial(ledger.set_opening, tb.id, a, opening, key=key)
        else:
            leaver = rng.choice(people[:LEAVERS])
            to = rng.choice([None, None, *(p for p in people[LEAVERS:])])
            write = functools.partial(ledger.leave, tb.id, leaver, balance_to=to, key=key)
        for _attempt in range(2):
            calls = [write(), write()] if rng.random() < 0.25 else [write()]
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            answers = [o for o in outcomes if not isinstance(o, BaseException)]
            errors = [o for o in outcomes if isinstance(o, BaseException)]
            for error in errors:
                if not isinstance(error, LimitExceeded | InvalidTransition | ValidationFailed):
                    raise error
                name = type(error).__name__
                ack.refusals[name] = ack.refusals.get(name, 0) + 1
            if answers:
                # One key, one answer: the twins of a double tap replay the same write.
                first = answers[0]
                assert all(
                    (o.record, o.transfer) == (first.record, first.transfer) for o in answers
                )
                ack.new.extend(o for o in answers if not o.replayed)
                assert sum(not o.replayed for o in answers) <= 1, "one key wrote twice"
                ack.answers[(key.author, key.key)] = (write, first)
                break
            # Refused: nothing was stored, so the retry under the same key is a new attempt.


async def test_gifts_grants_and_leavings_at_once_keep_every_invariant(wide_engine):
    participants = Participants(wide_engine)
    tb = await participants.create_timebank(unique_slug("pot"), "Pot at Once", TIGHT)
    enrolled = [await participants.enrol(tb, "member", f"Pot {n}") for n in range(POT_MEMBERS)]
    members = [(m.id, m.account_id) for m in enrolled]
    ledger = Ledger(wide_engine)
    ack = PotAcknowledged()

    await asyncio.wait_for(
        asyncio.gather(*(_pot_task(n, ledger, tb, members, ack) for n in range(POT_TASKS))),
        timeout=90,
    )
    assert ack.refusals.get("LimitExceeded"), "the limits were never reached: not tight enough"
    assert ack.refusals.get("InvalidTransition"), "nothing met a closed account or a set opening"
    assert len(ack.new) > POT_TASKS, "too few writes went through to prove anything"

    report = await _audit(wide_engine, tb.slug)
    assert report.ok, [str(f) for f in report.findings]

    # Every acknowledged write, sent again under its key, is answered as first written.
    for write, first in ack.answers.values():
        again = await write()
        assert again.replayed and (again.record, again.transfer) == (first.record, first.transfer)

    fund = tb.community_fund_account_id
    account_of = dict(members)
    async with wide_engine.connect() as conn:

        async def rows(sql: str) -> list[Any]:
            return list(await conn.execute(text(sql), {"tb": tb.id}))

        # No posting ever took a member's account past its limits.
        outside = await rows(
            "SELECT p.id FROM postings p JOIN accounts a ON a.id = p.account_id"
            " WHERE p.timebank_id = :tb AND a.participant_id IS NOT NULL"
            "   AND (p.balance_after < a.floor OR p.balance_after > a.ceiling)"
        )
        assert outside == []

        # Exactly the acknowledged writes are stored, each once.
        new_transfers = [o.transfer for o in ack.new if o.transfer is not None]
        assert len({t.id for t in new_transfers}) == len(new_transfers)
        stored = {
            r.id: (r.debit_account_id, r.credit_account_id, r.minutes, r.kind)
            for r in await rows(
                "SELECT id, debit_account_id, credit_account_id, minutes, kind FROM transfers"
                " WHERE timebank_id = :tb"
            )
        }
        assert stored == {
            t.id: (t.debit_account_id, t.credit_account_id, t.minutes, t.kind)
            for t in new_transfers
        }
        gifts = {r.id for r in await rows("SELECT id FROM gifts WHERE timebank_id = :tb")}
        assert gifts == {o.record.id for o in ack.new if isinstance(o.record, GiftRecord)}
        openings = {
            r.account_id: r.minutes
            for r in await rows(
                "SELECT account_id, minutes FROM opening_balances WHERE timebank_id = :tb"
            )
        }
        assert openings == {
            o.record.account_id: o.record.minutes
            for o in ack.new
            if isinstance(o.record, OpeningRecord)
        }
        departed = {
            r.account_id
            for r in await rows("SELECT account_id FROM departures WHERE timebank_id = :tb")
        }
        left = [o.record.account_id for o in ack.new if isinstance(o.record, DepartureRecord)]
        assert sorted(departed) == sorted(left)  # nobody left twice
        assert departed <= {account_of[pid] for pid, _ in members[:LEAVERS]}

        # Balances follow from the acknowledged transfers; closed accounts hold nothing.
        expected = {account_id: 0 for _, account_id in members} | {fund: 0}
        for t in new_transfers:
            expected[t.debit_account_id] -= t.minutes
            expected[t.credit_account_id] += t.minutes
        accounts = {
            r.id: (r.balance, r.pending_in, r.pending_out, r.closed)
            for r in await rows(
                "SELECT id, balance, pending_in, pending_out, closed_at IS NOT NULL AS closed"
                " FROM accounts WHERE timebank_id = :tb"
            )
        }
        assert {a: v[0] for a, v in accounts.items()} == expected
        assert sum(expected.values()) == 0
        assert {a for a, v in accounts.items() if v[3]} == departed
        assert all(v[:3] == (0, 0, 0) for v in accounts.values() if v[3])

        # A key is stored for each acknowledged write and for nothing else.
        keys = {
            (r.author, r.key)
            for r in await rows("SELECT author, key FROM idempotency_keys WHERE timebank_id = :tb")
        }
        assert keys == set(ack.answers)
