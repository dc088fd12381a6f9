"""Gifts, grants from the community pot, opening balances and leaving, through the ledger
service. Every test ends with the ledger's audit clean. PostgreSQL itself refusing any
movement on a closed account (I9) is in tests/ledger/test_invariants_sql.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.ledger.test_invariants_sql import INVALID_REQUEST, ledger_state, refused
from timebank.errors import (
    IdempotencyMismatch,
    InvalidTransition,
    LimitExceeded,
    ValidationFailed,
)
from timebank.ledger import IdempotencyKey, Ledger
from timebank.ledger.audit import audit


@pytest.fixture(autouse=True)
async def audited(engine: AsyncEngine, timebank) -> AsyncIterator[None]:
    """After each test, the test's timebank passes the ledger's audit (``timebank verify``)."""
    yield
    async with engine.connect() as conn:
        report = await audit(conn, timebank.slug)
    assert report.ok, report.findings


async def members(participants, timebank, *names: str):
    return [await participants.enrol(timebank, "member", name) for name in names]


async def balance(ledger: Ledger, timebank, account_id: int) -> int:
    return (await ledger.balance(timebank.id, account_id)).balance_minutes


async def pot_balance(ledger: Ledger, timebank) -> int:
    return await balance(ledger, timebank, timebank.community_fund_account_id)


async def gift_rows(raw: asyncpg.Connection, timebank_id: int) -> int:
    return await raw.fetchval("SELECT count(*) FROM gifts WHERE timebank_id = $1", timebank_id)


# Gifts and grants ------------------------------------------------------------------------------


async def test_a_gift_moves_minutes_to_a_member_with_its_note_beside_the_ledger(
    ledger, participants, timebank, raw
):
    ada, bea = await members(participants, timebank, "Ada", "Bea")
    result = await ledger.gift(timebank.id, ada.id, bea.id, 60, note="for your move")
    assert not result.replayed
    assert result.transfer.kind == "gift"
    assert result.transfer.memo is None
    assert (result.transfer.debit_account_id, result.transfer.credit_account_id) == (
        ada.account_id,
        bea.account_id,
    )
    assert result.record.note == "for your move"
    assert (result.record.from_participant_id, result.record.to_participant_id) == (ada.id, bea.id)
    assert await balance(ledger, timebank, ada.account_id) == -60
    assert await balance(ledger, timebank, bea.account_id) == 60


async def test_a_gift_is_stamped_when_written_not_when_its_transaction_began(
    participants, timebank, raw
):
    """Reports count a gift as of its stamp: one whose transaction waited (here half a second)
    must not carry a moment from before the wait, which a report may already have counted."""
    from timebank.ledger import pot

    ada, bea = await members(participants, timebank, "Ada", "Bea")
    async with raw.transaction():
        began = await raw.fetchval("SELECT now()")
        await raw.execute("SELECT pg_sleep(0.5)")
        written = await pot.gift(raw, timebank.id, ada.id, bea.id, 15)
    stamped = await raw.fetchval("SELECT created_at FROM gifts WHERE id = $1", written.record.id)
    assert (stamped - began).total_seconds() >= 0.5


async def test_a_gift_to_the_pot_raises_it_and_a_grant_from_it_lowers_it(
    ledger, participants, timebank
):
    ada, bea = await members(participants, timebank, "Ada", "Bea")
    await ledger.gift(timebank.id, ada.id, None, 90)
    assert await pot_balance(ledger, timebank) == 90
    granted = await ledger.gift(timebank.id, None, bea.id, 150, note="cannot earn this month")
    assert granted.transfer.kind == "grant"
    assert granted.transfer.memo is None
    assert granted.record.kind == "grant"
    assert granted.record.note == "cannot earn this month"
    assert granted.record.from_participant_id is None
    assert await pot_balance(ledger, timebank) == -60  # the pot may go below zero
    assert await balance(ledger, timebank, bea.account_id) == 150


async def test_a_gift_past_the_givers_floor_is_refused_and_writes_nothing(
    ledger, participants, timebank, raw
):
    ada, bea = await members(participants, timebank, "Ada", "Bea")
    before = await ledger_state(raw, timebank.id)
    with pytest.raises(LimitExceeded):
        await ledger.gift(timebank.id, ada.id, bea.id, 601)
    assert await ledger_state(raw, timebank.id) == before
    assert await gift_rows(raw, timebank.id) == 0


async def test_nobody_gifts_to_themselves_and_a_grant_comes_from_the_pot(
    ledger, participants, timebank, raw
):
    (ada,) = await members(participants, timebank, "Ada")
    with pytest.raises(ValidationFailed):
        await ledger.gift(timebank.id, ada.id, ada.id, 10)
    with pytest.raises(ValidationFailed, match="grant goes from the community pot to a member"):
        await ledger.gift(timebank.id, None, None, 10)
    with refused(sqlstate=INVALID_REQUEST, match="grant goes from the community pot"):
        await raw.fetchrow(
            "SELECT * FROM ledger_gift($1, 'grant', $2, NULL, 10, NULL, NULL, NULL, NULL, NULL)",
            timebank.id,
            ada.id,
        )
    assert await gift_rows(raw, timebank.id) == 0


async def test_a_gift_replays_under_its_key(ledger, participants, timebank, raw):
    ada, bea = await members(participants, timebank, "Ada", "Bea")
    key = IdempotencyKey("user:1", "gift-1")
    first = await ledger.gift(timebank.id, ada.id, bea.id, 30, note="thanks", key=key)
    again = await ledger.gift(timebank.id, ada.id, bea.id, 30, note="thanks", key=key)
    assert again.replayed
    assert (again.record, again.transfer) == (first.record, first.transfer)
    with pytest.raises(IdempotencyMismatch):
        await ledger.gift(timebank.id, ada.id, bea.id, 31, note="thanks", key=key)
    grant_key = IdempotencyKey("user:1", "grant-1")
    granted = await ledger.gift(timebank.id, None, bea.id, 20, note="help", key=grant_key)
    assert (await ledger.gift(timebank.id, None, bea.id, 20, note="help", key=grant_key)).replayed
    assert granted.record.id != first.record.id
    assert await balance(ledger, timebank, bea.account_id) == 50
    assert await gift_rows(raw, timebank.id) == 2


# Opening balances -------------------------------------------------------------------------------


async def test_an_opening_balance_is_set_once_against_the_pot(ledger, participants, timebank):
    ada, bea = await members(participants, timebank, "Ada", "Bea")
    opened = await ledger.set_opening(timebank.id, ada.id, 300)
    assert not opened.replayed
    assert opened.transfer is not None and opened.transfer.kind == "opening"
    assert opened.record.minutes == 300
    assert await balance(ledger, timebank, ada.account_id) == 300
    again = await ledger.set_opening(timebank.id, ada.id, 300)
    assert again.replayed
    assert again.record == opened.record and again.transfer == opened.transfer
    with pytest.raises(InvalidTransition, match="already set"):
        await ledger.set_opening(timebank.id, ada.id, 240)
    owing = await ledger.set_opening(timebank.id, bea.id, -120)
    assert owing.transfer is not None
    assert owing.transfer.credit_account_id == timebank.community_fund_account_id
    assert await balance(ledger, timebank, bea.account_id) == -120
    assert await pot_balance(ledger, timebank) == -180


async def test_an_opening_balance_of_zero_is_recorded_without_a_transfer(
    ledger, participants, timebank
):
    (ada,) = await members(participants, timebank, "Ada")
    opened = await ledger.set_opening(timebank.id, ada.id, 0)
    assert opened.transfer is None and opened.record.transfer_id is None
    with pytest.raises(InvalidTransition):
        await ledger.set_opening(timebank.id, ada.id, 60)


async def test_an_opening_balance_past_the_floor_is_refused(ledger, participants, timebank, raw):
    (ada,) = await members(participants, timebank, "Ada")
    before = await ledger_state(raw, timebank.id)
    with pytest.raises(LimitExceeded):
        await ledger.set_opening(timebank.id, ada.id, -601)
    assert await ledger_state(raw, timebank.id) == before


async def test_an_opening_balance_replays_under_its_key(ledger, participants, timebank):
    (ada,) = await members(participants, timebank, "Ada")
    key = IdempotencyKey("user:1", "opening-1")
    first = await ledger.set_opening(timebank.id, ada.id, 45, key=key)
    again = await ledger.set_opening(timebank.id, ada.id, 45, key=key)
    assert again.replayed and again.record == first.record
    with pytest.raises(IdempotencyMismatch):
        await ledger.set_opening(timebank.id, ada.id, 46, key=key)


# Leaving ----------------------------------------------------------------------------------------


async def test_leaving_gives_a_positive_balance_to_the_pot_and_closes_the_account(
    ledger, participants, timebank, raw
):
    ada, bea = await members(participants, timebank, "Ada", "Bea")
    await ledger.post_transfer(timebank.id, bea.account_id, ada.account_id, 90)
    left = await ledger.leave(timebank.id, ada.id)
    assert not left.replayed
    assert left.transfer is not None and left.transfer.kind == "leaving"
    assert left.transfer.credit_account_id == timebank.community_fund_account_id
    assert left.record.balance_minutes == 90
    assert await balance(ledger, timebank, ada.account_id) == 0
    assert await pot_balance(ledger, timebank) == 90
    closed = await raw.fetchval("SELECT closed_at FROM accounts WHERE id = $1", ada.account_id)
    assert closed is not None
    with pytest.raises(InvalidTransition, match="has left"):
        await ledger.gift(timebank.id, bea.id, ada.id, 10)
    with pytest.raises(InvalidTransition, match="closed"):
        await ledger.post_transfer(timebank.id, bea.account_id, ada.account_id, 10)
    with pytest.raises(InvalidTransition, match="has left"):
        await ledger.leave(timebank.id, ada.id)


async def test_leaving_gives_a_balance_to_a_named_member(ledger, participants, timebank):
    ada, bea, cy = await members(participants, timebank, "Ada", "Bea", "Cy")
    await ledger.post_transfer(timebank.id, bea.account_id, ada.account_id, 75)
    left = await ledger.leave(timebank.id, ada.id, balance_to=cy.id)
    assert left.record.balance_to_participant_id == cy.id
    assert await balance(ledger, timebank, cy.account_id) == 75
    assert await pot_balance(ledger, timebank) == 0


async def test_the_pot_takes_the_debt_of_who_leaves_owing(ledger, participants, timebank):
    ada, bea = await members(participants, timebank, "Ada", "Bea")
    await ledger.post_transfer(timebank.id, ada.account_id, bea.account_id, 200)
    with pytest.raises(ValidationFailed, match="debt"):
        await ledger.leave(timebank.id, ada.id, balance_to=bea.id)
    left = await ledger.leave(timebank.id, ada.id)
    assert left.transfer is not None
    assert left.transfer.debit_account_id == timebank.community_fund_account_id
    assert left.record.balance_minutes == -200
    assert await balance(ledger, timebank, ada.account_id) == 0
    assert await pot_balance(ledger, timebank) == -200


async def test_leaving_with_nothing_closes_the_account_without_a_transfer(
    ledger, participants, timebank
):
    (ada,) = await members(participants, timebank, "Ada")
    left = await ledger.leave(timebank.id, ada.id)
    assert left.transfer is None and left.record.transfer_id is None


async def test_leaving_is_refused_while_something_is_pending(ledger, participants, timebank, raw):
    ada, bea = await members(participants, timebank, "Ada", "Bea")
    pending = await ledger.reserve(timebank.id, bea.account_id, ada.account_id, 30)
    before = await ledger_state(raw, timebank.id)
    for who in (ada, bea):
        with pytest.raises(InvalidTransition, match="pending"):
            await ledger.leave(timebank.id, who.id)
    assert await ledger_state(raw, timebank.id) == before
    await ledger.void_pending(timebank.id, pending.pending.id)
    assert (await ledger.leave(timebank.id, ada.id)).transfer is None


async def test_leaving_replays_under_its_key(ledger, participants, timebank):
    ada, bea = await members(participants, timebank, "Ada", "Bea")
    await ledger.post_transfer(timebank.id, bea.account_id, ada.account_id, 40)
    key = IdempotencyKey("user:1", "leave-1")
    first = await ledger.leave(timebank.id, ada.id, key=key)
    again = await ledger.leave(timebank.id, ada.id, key=key)
    assert again.replayed
    assert (again.record, again.transfer) == (first.record, first.transfer)
    with pytest.raises(IdempotencyMismatch):
        await ledger.leave(timebank.id, ada.id, balance_to=bea.id, key=key)


# The records beside the ledger ------------------------------------------------------------------


async def test_the_records_beside_the_ledger_are_append_only(ledger, participants, timebank, raw):
    ada, bea = await members(participants, timebank, "Ada", "Bea")
    given = await ledger.gift(timebank.id, ada.id, bea.id, 10, note="a note")
    await raw.execute("UPDATE gifts SET note = NULL WHERE id = $1", given.record.id)  # erasure
    with refused(sqlstate="TBIN0"):
        await raw.execute("UPDATE gifts SET minutes = 11 WHERE id = $1", given.record.id)
    with refused(sqlstate="TBIN0"):
        await raw.execute("UPDATE gifts SET note = 'another' WHERE id = $1", given.record.id)
    with refused(sqlstate="TBIN0"):
        await raw.execute("DELETE FROM gifts WHERE id = $1", given.record.id)
    left = await ledger.leave(timebank.id, ada.id)
    with refused(sqlstate="TBIN0"):
        await raw.execute(
            "UPDATE departures SET balance_minutes = 0 WHERE account_id = $1",
            left.record.account_id,
        )


# Races ------------------------------------------------------------------------------------------


async def test_leaving_races_a_reservation_a_gift_and_itself_with_one_consistent_outcome(
    ledger, participants, timebank, raw
):
    """Whichever commits first wins: a reservation or gift that lands first makes leaving
    wait for it (and refuse while the reservation is pending, or carry the gift away); one
    that comes after finds the account closed. Two leavings: one wins."""
    for _ in range(6):
        ada, bea = await members(participants, timebank, "Ada", "Bea")
        outcomes = await asyncio.gather(
            ledger.leave(timebank.id, ada.id),
            ledger.reserve(timebank.id, bea.account_id, ada.account_id, 20),
            ledger.gift(timebank.id, bea.id, ada.id, 15),
            ledger.leave(timebank.id, ada.id),
            return_exceptions=True,
        )
        for outcome in outcomes:
            assert not isinstance(outcome, Exception) or isinstance(outcome, InvalidTransition), (
                repr(outcome)
            )
        left = [o for o in (outcomes[0], outcomes[3]) if not isinstance(o, Exception)]
        reserved = not isinstance(outcomes[1], Exception)
        account = await raw.fetchrow(
            "SELECT balance, pending_in, closed_at FROM accounts WHERE id = $1", ada.account_id
        )
        assert len(left) <= 1
        assert (account["closed_at"] is not None) == bool(left)
        assert not (left and reserved)  # nothing stays reserved on a closed account
        if left:
            assert account["balance"] == 0
