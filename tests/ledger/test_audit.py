"""The audit finds nothing on an honest ledger and names what was changed behind its back."""

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.ledger.test_invariants_sql import decide, logged_session, session_people
from timebank.ledger.audit import audit


async def run_audit(engine: AsyncEngine, slug: str):
    async with engine.connect() as conn:
        return await audit(conn, slug)


async def test_clean_ledger_passes(engine, ledger, participants, timebank):
    a = await participants.enrol(timebank, "member", "Ada")
    b = await participants.enrol(timebank, "professional", "Bo")
    await ledger.post_transfer(timebank.id, a.account_id, b.account_id, 60)
    pending = await ledger.reserve(timebank.id, b.account_id, a.account_id, 30)
    await ledger.post_pending(timebank.id, pending.pending.id)
    await ledger.reserve(timebank.id, b.account_id, a.account_id, 15)
    report = await run_audit(engine, timebank.slug)
    assert report.ok, report.findings
    assert (report.accounts, report.transfers, report.postings) == (3, 2, 4)


async def test_tampered_posting_is_named(engine, raw, ledger, participants, timebank):
    a = await participants.enrol(timebank, "member", "Ada")
    b = await participants.enrol(timebank, "member", "Bo")
    posted = await ledger.post_transfer(timebank.id, a.account_id, b.account_id, 60)
    async with raw.transaction():
        await raw.execute("SET LOCAL session_replication_role = replica")
        await raw.execute(
            "UPDATE postings SET minutes = minutes + 5, balance_after = balance_after + 5"
            " WHERE transfer_id = $1 AND account_id = $2",
            posted.transfer.id,
            b.account_id,
        )
    report = await run_audit(engine, timebank.slug)
    assert not report.ok
    named = {(f.check, f.subject) for f in report.findings}
    assert ("balance-matches-postings", f"account {b.account_id}") in named
    assert ("transfer-zero-sum", f"transfer {posted.transfer.id}") in named


async def test_gifts_openings_and_departures_are_checked_against_their_transfers(
    engine, raw, ledger, participants, timebank
):
    a = await participants.enrol(timebank, "member", "Ada")
    b = await participants.enrol(timebank, "member", "Bo")
    given = await ledger.gift(timebank.id, a.id, None, 30, note="for the pot")
    await ledger.gift(timebank.id, None, b.id, 20, note="a hard month")
    await ledger.set_opening(timebank.id, b.id, -45)
    await ledger.leave(timebank.id, a.id)  # owing 30: the pot takes the debt
    assert (await run_audit(engine, timebank.slug)).ok
    async with raw.transaction():
        await raw.execute("SET LOCAL session_replication_role = replica")
        await raw.execute("UPDATE gifts SET minutes = 31 WHERE id = $1", given.record.id)
        await raw.execute("UPDATE accounts SET closed_at = NULL WHERE id = $1", a.account_id)
    report = await run_audit(engine, timebank.slug)
    named = {(f.check, f.subject) for f in report.findings}
    assert named == {
        ("records-match-transfers", f"gift {given.record.id}"),
        ("records-of-kinds", f"account {a.account_id}"),
    }


async def test_group_sessions_are_checked_against_their_legs(engine, raw, participants, timebank):
    host, people = await session_people(participants, timebank, attendees=4)
    counted, counted_legs = await logged_session(raw, timebank.id, host, people[:2], [30, 45])
    decided, decided_legs = await logged_session(raw, timebank.id, host, people[2:], [20, 25])
    async with raw.transaction():
        for leg in decided_legs:
            await decide(raw, timebank.id, leg, "approve")
    hosted, hosted_legs = await logged_session(raw, timebank.id, host, people[:1], [60])
    assert (await run_audit(engine, timebank.slug)).ok
    async with raw.transaction():
        await raw.execute("SET LOCAL session_replication_role = replica")
        # A leg's minutes changed (the total no longer adds up), a leg's decision undone
        # (decided apart), and a session's host on the other side.
        await raw.execute("UPDATE exchanges SET minutes = 31 WHERE id = $1", counted_legs[0])
        await raw.execute(
            "UPDATE exchanges SET state = 'awaiting_approval', transfer_id = NULL,"
            " approved_at = NULL WHERE id = $1",
            decided_legs[1],
        )
        await raw.execute(
            "UPDATE exchanges SET giver_id = receiver_id, receiver_id = giver_id WHERE id = $1",
            hosted_legs[0],
        )
    report = await run_audit(engine, timebank.slug)
    sessions = {f.subject: f.detail for f in report.findings if f.check == "group-sessions"}
    assert set(sessions) == {f"group session {g}" for g in (counted, decided, hosted)}
    assert "has 2 legs of 76 minutes" in sessions[f"group session {counted}"]
    assert "approved, awaiting_approval" in sessions[f"group session {decided}"]
    assert "1 not with its host" in sessions[f"group session {hosted}"]


async def test_a_missing_leg_is_named(engine, raw, participants, timebank):
    host, people = await session_people(participants, timebank)
    group_id, legs = await logged_session(raw, timebank.id, host, people, [30, 30, 30])
    async with raw.transaction():
        await raw.execute("SET LOCAL session_replication_role = replica")
        await raw.execute("UPDATE exchanges SET group_id = NULL WHERE id = $1", legs[2])
    report = await run_audit(engine, timebank.slug)
    assert [(f.check, f.subject) for f in report.findings] == [
        ("group-sessions", f"group session {group_id}")
    ]
    assert "says 3 legs of 90 minutes" in report.findings[0].detail
    assert "has 2 legs of 60 minutes" in report.findings[0].detail
