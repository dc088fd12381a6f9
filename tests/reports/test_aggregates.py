"""The report aggregates PostgreSQL keeps (schema/sql/tables/reports.sql) under concurrent
approvals and reversals: afterwards each one equals a recount from the exchanges that count, so
no race between two approvals, or between an approval and a reversal, leaves a person, a pair
or a minute out of a report.

Eight participants, so pairs and months repeat a lot; sixteen tasks log exchanges (approved as
they are logged) on random days of the last seven months and reverse some of them, all at once
through the real exchanges service, while the background applier brings the aggregates up to
date from their queue (report_apply_queued) every few milliseconds."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from datetime import date, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import unique_slug
from tests.exchanges.conftest import exchange_body, set_policy
from tests.live import running_service
from tests.people import make_person, make_world
from tests.reports.sessions import log_session, reverse_session
from timebank.auth.schemas import Principal, TimebankAccess
from timebank.bench.reports_plain import check_contribution, plain_contribution
from timebank.cli import audit_ledger_and_reports
from timebank.errors import TimebankError
from timebank.exchanges.schemas import ExchangeCreate, GroupSessionCreate, LegCreate
from timebank.exchanges.service import Exchanges
from timebank.ledger import Ledger
from timebank.participants.schemas import TimebankPolicy
from timebank.participants.service import Participants
from timebank.reports.audit import CHECKS, aggregate_differences
from timebank.reports.queue import catch_up, keep_applying
from timebank.reports.service import Reports
from timebank.settings import Settings


async def mismatches(engine: AsyncEngine, timebank_id: int) -> dict[str, int]:
    await catch_up(engine)
    async with engine.connect() as conn:
        return await aggregate_differences(conn, timebank_id)


async def test_aggregates_equal_a_recount_after_concurrent_approvals_and_reversals(
    engine: AsyncEngine, participants: Participants
) -> None:
    policy = TimebankPolicy(
        approval_mode="automatic",
        confirmation_required=False,
        default_floor_minutes=-1_000_000,
        default_ceiling_minutes=1_000_000,
    )
    timebank = await participants.create_timebank(unique_slug("agg"), "Aggregates", policy)
    kinds = ("member", "member", "member", "member", "professional", "organisation")
    people = [
        (await participants.enrol(timebank, kinds[i % len(kinds)], f"Person {i}")).id
        for i in range(8)
    ]
    someone = await make_person(engine, "aggregates-admin", is_admin=True)
    admin = TimebankAccess(
        principal=Principal(
            user_id=someone.user_id, email=someone.email, is_admin=True, token_id=0
        ),
        timebank_id=timebank.id,
        timebank_slug=timebank.slug,
    )
    exchanges = Exchanges(engine)
    today = date.today()
    logged: list[int] = []

    async def member_at_work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(14):
            if logged and rng.random() < 0.25:
                try:
                    await exchanges.decide(admin, rng.choice(logged), "reverse", "logged in error")
                except TimebankError:
                    pass  # reversed already by another task
                continue
            giver, receiver = rng.sample(people, 2)
            result = await exchanges.log(
                admin,
                ExchangeCreate(
                    giver_id=giver,
                    receiver_id=receiver,
                    minutes=rng.choice((30, 60, 90)),
                    service_date=today - timedelta(days=rng.randrange(0, 210)),
                    category=rng.choice(("gardening", "lifts", "cooking")),
                ),
            )
            assert result.exchange.state == "approved"
            logged.append(result.exchange.id)

    applier = asyncio.create_task(keep_applying(engine, interval=0.005))
    await asyncio.gather(*(member_at_work(seed) for seed in range(16)))
    applier.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await applier
    # Some changes left in the queue: verify counts them as not yet applied.
    await member_at_work(99)
    async with engine.connect() as conn:
        queued = (await conn.execute(text("SELECT count(*) FROM report_queue"))).scalar_one()
    assert queued > 0
    async with engine.begin() as conn:
        assert (await audit_ledger_and_reports(conn, timebank.slug)).ok

    async with engine.connect() as conn:
        states = dict(
            (
                await conn.execute(
                    text(
                        "SELECT state, count(*) FROM exchanges WHERE timebank_id = :tb"
                        " GROUP BY state"
                    ),
                    {"tb": timebank.id},
                )
            ).all()
        )
    assert states.get("approved", 0) > 100 and states.get("reversed", 0) > 10, states
    assert await mismatches(engine, timebank.id) == dict.fromkeys(CHECKS, 0)

    # timebank verify recounts them too, and names the table that no longer adds up.
    async with engine.begin() as conn:
        assert (await audit_ledger_and_reports(conn, timebank.slug)).ok
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE report_tie_steps SET pairs = pairs + 1 WHERE ctid = (SELECT ctid FROM"
                " report_tie_steps WHERE timebank_id = :tb AND kind = 'any' LIMIT 1)"
            ),
            {"tb": timebank.id},
        )
    async with engine.begin() as conn:
        report = await audit_ledger_and_reports(conn, timebank.slug)
    assert [(f.check, f.timebank, f.subject) for f in report.findings] == [
        ("report-aggregates", timebank.slug, "report_tie_steps")
    ]


async def test_a_running_service_brings_the_aggregates_up_to_date_by_itself(
    database_url: str, engine: AsyncEngine
) -> None:
    """Approvals queue their change; the service's background applier takes it in within a
    second or so (``/metrics`` shows the queue draining), with no report asked for."""
    world = await make_world(engine)
    await set_policy(
        engine, world.timebank.id, confirmation_required=False, approval_mode="automatic"
    )
    with running_service(database_url) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as http:
            logged = await http.post(
                f"/api/v1/timebanks/{world.timebank.slug}/exchanges",
                json=exchange_body(world.member, world.other_member, minutes=75),
                headers=world.other_member.headers,  # the receiver: debits only themselves
            )
            assert logged.status_code == 201, logged.text
            assert logged.json()["state"] == "approved"
            deadline = time.monotonic() + 15
            while "timebank_report_queue 0.0" not in (await http.get("/metrics")).text:
                assert time.monotonic() < deadline, "the report queue was never applied"
                await asyncio.sleep(0.2)
    async with engine.connect() as conn:
        minutes = (
            await conn.execute(
                text("SELECT sum(minutes) FROM report_days WHERE timebank_id = :tb"),
                {"tb": world.timebank.id},
            )
        ).scalar_one()
        assert minutes == 75
        assert await aggregate_differences(conn, world.timebank.id) == dict.fromkeys(CHECKS, 0)


async def test_group_legs_move_the_aggregates_as_exchanges_and_gifts_never_do(
    engine: AsyncEngine, participants: Participants, ledger: Ledger, raw
) -> None:
    """A group session's legs reach the aggregates through the same queue as any exchange
    (one leg, one exchange between host and attendee) and leave them when the session is
    reversed; gifts, grants, an opening balance and a leaving touch no aggregate, yet the
    report counts gifts and sessions from the moment they are made, before any catch-up."""
    policy = TimebankPolicy(default_floor_minutes=-10_000, default_ceiling_minutes=10_000)
    timebank = await participants.create_timebank(unique_slug("agk"), "Kinds", policy)
    host, *attendees = [
        (await participants.enrol(timebank, "member", f"Person {i}")).id for i in range(6)
    ]
    leaver = (await participants.enrol(timebank, "member", "Leaver")).id
    someone = await make_person(engine, "kinds-admin", is_admin=True)
    admin = TimebankAccess(
        principal=Principal(
            user_id=someone.user_id, email=someone.email, is_admin=True, token_id=0
        ),
        timebank_id=timebank.id,
        timebank_slug=timebank.slug,
    )
    reports = Reports(engine, Settings(report_settle_seconds=0))
    day = date.today() - timedelta(days=3)
    period = {"start": day, "end": date.today()}

    async def aggregates() -> tuple[int, int, int]:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT coalesce(sum(minutes), 0), coalesce(sum(exchanges), 0),"
                        " (SELECT count(*) FROM report_firsts WHERE timebank_id = :tb)"
                        " FROM report_days WHERE timebank_id = :tb"
                    ),
                    {"tb": timebank.id},
                )
            ).one()
        return tuple(row)  # type: ignore[return-value]

    await catch_up(engine)
    await ledger.gift(timebank.id, attendees[0], attendees[1], 30, note="thank you")
    await ledger.gift(timebank.id, attendees[2], None, 45)
    await ledger.gift(timebank.id, None, attendees[3], 20, user_id=someone.user_id)
    await ledger.set_opening(timebank.id, attendees[4], 90, user_id=someone.user_id)
    await ledger.leave(timebank.id, leaver, user_id=someone.user_id)
    await catch_up(engine)
    assert await aggregates() == (0, 0, 0)  # nothing of these is an exchange

    session, legs = await log_session(
        engine,
        timebank.id,
        host_id=host,
        attendees=attendees,
        minutes=[60] * len(attendees),
        service_date=day,
        category="cooking",
    )
    assert len(legs) == 5
    report = await reports.contribution(admin, **period)  # queued, not yet applied
    totals = report.totals
    assert (totals.minutes, totals.exchanges, totals.active, totals.ties) == (300, 5, 6, 5)
    assert (totals.first_exchanges, totals.reciprocal) == (6, 0)
    assert (totals.sessions, totals.session_attendances, totals.session_minutes) == (1, 5, 300)
    assert (totals.gifted_minutes, totals.gifted_to_pot_minutes, totals.granted_minutes) == (
        30,
        45,
        20,
    )
    assert await mismatches(engine, timebank.id) == dict.fromkeys(CHECKS, 0)
    assert await aggregates() == (300, 5, 6)
    # The plainest SQL from the definitions (timebank bench reports) agrees, figure by figure.
    plain = await plain_contribution(raw, timebank.id, day, date.today(), report.as_of)
    whole = next(row for row in plain["series"] if row["whole"])
    assert (whole["sessions"], whole["gifted_to_pot_minutes"]) == (1, 45)
    assert check_contribution(report, plain) == ([], [])

    await reverse_session(engine, timebank.id, session)
    totals = (await reports.contribution(admin, **period)).totals
    assert (totals.minutes, totals.exchanges, totals.active, totals.sessions) == (0, 0, 0, 0)
    assert totals.gifted_minutes == 30
    assert await mismatches(engine, timebank.id) == dict.fromkeys(CHECKS, 0)
    assert await aggregates() == (0, 0, 0)
    async with engine.begin() as conn:
        assert (await audit_ledger_and_reports(conn, timebank.slug)).ok


async def test_a_session_logged_and_reversed_through_the_exchanges_service_counts_the_same(
    engine: AsyncEngine, participants: Participants
) -> None:
    """The exchanges service's own group sessions (not the tests' writer): approved as logged
    under an 'automatic' policy, they count in the report at once, their legs as exchanges;
    reversed as one, they stop; the aggregates equal a recount throughout."""
    policy = TimebankPolicy(
        approval_mode="automatic",
        confirmation_required=False,
        default_floor_minutes=-10_000,
        default_ceiling_minutes=10_000,
    )
    timebank = await participants.create_timebank(unique_slug("ags"), "Sessions", policy)
    host, *attendees = [
        (await participants.enrol(timebank, "member", f"Person {i}")).id for i in range(4)
    ]
    someone = await make_person(engine, "sessions-admin", is_admin=True)
    admin = TimebankAccess(
        principal=Principal(
            user_id=someone.user_id, email=someone.email, is_admin=True, token_id=0
        ),
        timebank_id=timebank.id,
        timebank_slug=timebank.slug,
    )
    day = date.today() - timedelta(days=1)
    logged = await Exchanges(engine).log_group(
        admin,
        GroupSessionCreate(
            legs=[LegCreate(giver_id=host, receiver_id=a, minutes=45) for a in attendees],
            service_date=day,
            category="cooking",
        ),
    )
    reports = Reports(engine, Settings(report_settle_seconds=0))
    totals = (await reports.contribution(admin, start=day, end=day)).totals
    assert (totals.sessions, totals.session_attendances, totals.session_minutes) == (1, 3, 135)
    assert (totals.minutes, totals.exchanges, totals.active, totals.ties) == (135, 3, 4, 3)
    assert await mismatches(engine, timebank.id) == dict.fromkeys(CHECKS, 0)

    await Exchanges(engine).decide(admin, logged.session.id, "reverse", "did not take place")
    totals = (await reports.contribution(admin, start=day, end=day)).totals
    assert (totals.sessions, totals.minutes, totals.active) == (0, 0, 0)
    assert await mismatches(engine, timebank.id) == dict.fromkeys(CHECKS, 0)
