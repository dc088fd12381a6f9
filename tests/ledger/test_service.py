"""The ledger service as its callers meet it: balances move, limits hold, retries are safe."""

import pytest

from timebank.errors import (
    IdempotencyMismatch,
    InvalidTransition,
    LimitExceeded,
    NotFound,
    ValidationFailed,
)
from timebank.ledger import IdempotencyKey, TransferRequest


async def two_members(participants, timebank):
    giver = await participants.enrol(timebank, "member", "Ada Giver")
    receiver = await participants.enrol(timebank, "member", "Bea Receiver")
    return giver, receiver


async def test_posting_moves_both_balances(ledger, participants, timebank):
    giver, receiver = await two_members(participants, timebank)
    result = await ledger.post_transfer(
        timebank.id, receiver.account_id, giver.account_id, 90, memo="Gardening"
    )
    assert not result.replayed
    assert result.transfer.minutes == 90
    assert (await ledger.balance(timebank.id, giver.account_id)).balance_minutes == 90
    assert (await ledger.balance(timebank.id, receiver.account_id)).balance_minutes == -90


async def test_welcome_grant_comes_from_the_community_fund(participants):
    from tests.conftest import unique_slug
    from timebank.ledger import Ledger
    from timebank.participants.schemas import TimebankPolicy

    tb = await participants.create_timebank(
        unique_slug(), "Grant Bank", TimebankPolicy(welcome_grant_minutes=120)
    )
    newcomer = await participants.enrol(tb, "member", "Cy Newcomer")
    ledger = Ledger(participants._engine)
    assert (await ledger.balance(tb.id, newcomer.account_id)).balance_minutes == 120
    fund = await ledger.balance(tb.id, tb.community_fund_account_id)
    assert fund.balance_minutes == -120
    assert fund.floor_minutes is None


async def test_floor_refuses_overspending_with_a_typed_error(ledger, participants, timebank):
    giver, receiver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver.account_id, giver.account_id, 480)
    await ledger.post_transfer(timebank.id, receiver.account_id, giver.account_id, 120)
    with pytest.raises(LimitExceeded):
        await ledger.post_transfer(timebank.id, receiver.account_id, giver.account_id, 1)
    assert (await ledger.balance(timebank.id, receiver.account_id)).balance_minutes == -600


async def test_pending_reservation_counts_against_the_floor(ledger, participants, timebank):
    giver, receiver = await two_members(participants, timebank)
    pending = await ledger.reserve(timebank.id, receiver.account_id, giver.account_id, 400)
    with pytest.raises(LimitExceeded):
        await ledger.post_transfer(timebank.id, receiver.account_id, giver.account_id, 300)
    balance = await ledger.balance(timebank.id, receiver.account_id)
    assert (balance.balance_minutes, balance.pending_out_minutes) == (0, 400)
    assert balance.available_minutes == 200
    posted = await ledger.post_pending(timebank.id, pending.pending.id)
    assert posted.transfer.pending_transfer_id == pending.pending.id
    balance = await ledger.balance(timebank.id, receiver.account_id)
    assert (balance.balance_minutes, balance.pending_out_minutes) == (-400, 0)
    with pytest.raises(InvalidTransition):
        await ledger.post_pending(timebank.id, pending.pending.id)
    with pytest.raises(InvalidTransition):
        await ledger.void_pending(timebank.id, pending.pending.id)


async def test_voiding_releases_the_reservation(ledger, participants, timebank):
    giver, receiver = await two_members(participants, timebank)
    pending = await ledger.reserve(timebank.id, receiver.account_id, giver.account_id, 60)
    voided = await ledger.void_pending(timebank.id, pending.pending.id)
    assert voided.pending.state == "voided"
    giver_balance = await ledger.balance(timebank.id, giver.account_id)
    assert (giver_balance.balance_minutes, giver_balance.pending_in_minutes) == (0, 0)


async def test_reversal_happens_once_and_needs_a_reason(ledger, participants, timebank):
    giver, receiver = await two_members(participants, timebank)
    posted = await ledger.post_transfer(timebank.id, receiver.account_id, giver.account_id, 45)
    with pytest.raises(ValidationFailed):
        await ledger.reverse(timebank.id, posted.transfer.id, "  ")
    reversal = await ledger.reverse(timebank.id, posted.transfer.id, "logged twice by mistake")
    assert reversal.transfer.kind == "reversal"
    assert reversal.transfer.reverses_transfer_id == posted.transfer.id
    assert (await ledger.balance(timebank.id, giver.account_id)).balance_minutes == 0
    with pytest.raises(InvalidTransition):
        await ledger.reverse(timebank.id, posted.transfer.id, "again")
    with pytest.raises(InvalidTransition):
        await ledger.reverse(timebank.id, reversal.transfer.id, "undo the undo")


async def test_idempotent_retry_returns_the_original(ledger, participants, timebank):
    giver, receiver = await two_members(participants, timebank)
    key = IdempotencyKey(author="member:1", key="tap-1")
    first = await ledger.post_transfer(
        timebank.id, receiver.account_id, giver.account_id, 30, key=key
    )
    again = await ledger.post_transfer(
        timebank.id, receiver.account_id, giver.account_id, 30, key=key
    )
    assert again.replayed and again.transfer == first.transfer
    assert (await ledger.balance(timebank.id, giver.account_id)).balance_minutes == 30
    with pytest.raises(IdempotencyMismatch):
        await ledger.post_transfer(timebank.id, receiver.account_id, giver.account_id, 31, key=key)


async def test_over_the_exchange_maximum_is_refused(ledger, participants, timebank):
    giver, receiver = await two_members(participants, timebank)
    with pytest.raises(ValidationFailed):
        await ledger.post_transfer(timebank.id, receiver.account_id, giver.account_id, 481)
    with pytest.raises(ValidationFailed):
        await ledger.reserve(timebank.id, receiver.account_id, giver.account_id, 481)
    with pytest.raises(ValidationFailed):
        await ledger.post_transfer(timebank.id, receiver.account_id, giver.account_id, 0)


async def test_accounts_of_another_timebank_are_not_found(ledger, participants, timebank):
    from tests.conftest import unique_slug

    other = await participants.create_timebank(unique_slug(), "Hillside")
    stranger = await participants.enrol(other, "member", "Stranger")
    giver, _ = await two_members(participants, timebank)
    with pytest.raises(NotFound):
        await ledger.post_transfer(timebank.id, stranger.account_id, giver.account_id, 10)
    with pytest.raises(NotFound):
        await ledger.balance(timebank.id, stranger.account_id)


async def test_statement_pages_newest_first_with_running_balance(ledger, participants, timebank):
    giver, receiver = await two_members(participants, timebank)
    for minutes in (10, 20, 30, 40, 50):
        await ledger.post_transfer(timebank.id, receiver.account_id, giver.account_id, minutes)
    first = await ledger.statement(timebank.id, giver.account_id, limit=2)
    assert [line.balance_after for line in first.lines] == [150, 100]
    assert first.lines[0].counterparty_account_id == receiver.account_id
    second = await ledger.statement(
        timebank.id, giver.account_id, before_version=first.next_before_version, limit=2
    )
    assert [line.balance_after for line in second.lines] == [60, 30]
    last = await ledger.statement(
        timebank.id, giver.account_id, before_version=second.next_before_version, limit=2
    )
    assert [line.minutes for line in last.lines] == [10]
    assert last.next_before_version is None


async def test_values_the_database_cannot_hold_are_validation_errors(
    ledger, participants, timebank
):
    giver, receiver = await two_members(participants, timebank)
    with pytest.raises(ValidationFailed):
        await ledger.post_transfer(
            timebank.id, receiver.account_id, giver.account_id, 10, memo="a\x00b"
        )
    with pytest.raises(ValidationFailed):
        await ledger.post_transfer(timebank.id, receiver.account_id, giver.account_id, 2**63)
    with pytest.raises(ValidationFailed):
        await ledger.reverse(timebank.id, 2**63, "typo")
    assert (await ledger.balance(timebank.id, giver.account_id)).balance_minutes == 0


async def test_batch_posts_every_transfer_with_its_own_running_balance(
    ledger, participants, timebank
):
    giver, receiver = await two_members(participants, timebank)
    batch = await ledger.post_batch(
        timebank.id,
        [
            TransferRequest(receiver.account_id, giver.account_id, 30, "Lift to the clinic"),
            TransferRequest(receiver.account_id, giver.account_id, 60),
            TransferRequest(giver.account_id, receiver.account_id, 15),
        ],
    )
    assert [t.minutes for t in batch.transfers] == [30, 60, 15]
    assert batch.transfers[0].memo == "Lift to the clinic"
    statement = await ledger.statement(timebank.id, giver.account_id)
    assert [line.balance_after for line in statement.lines] == [75, 90, 30]
    assert (await ledger.balance(timebank.id, receiver.account_id)).balance_minutes == -75


async def test_batch_is_all_or_nothing_when_a_step_would_pass_a_limit(
    ledger, participants, timebank
):
    giver, receiver = await two_members(participants, timebank)
    # The net movement is within the floor (-600), but the second step would pass it.
    steps = [
        TransferRequest(receiver.account_id, giver.account_id, 480),
        TransferRequest(receiver.account_id, giver.account_id, 300),
        TransferRequest(giver.account_id, receiver.account_id, 400),
    ]
    with pytest.raises(LimitExceeded):
        await ledger.post_batch(timebank.id, steps)
    assert (await ledger.balance(timebank.id, giver.account_id)).version == 0
    assert (await ledger.balance(timebank.id, receiver.account_id)).balance_minutes == 0


async def test_batch_retry_with_the_same_key_posts_nothing_new(ledger, participants, timebank):
    giver, receiver = await two_members(participants, timebank)
    key = IdempotencyKey(author="coordinator:1", key="import-week-12")
    steps = [TransferRequest(receiver.account_id, giver.account_id, m) for m in (20, 40)]
    first = await ledger.post_batch(timebank.id, steps, key=key)
    again = await ledger.post_batch(timebank.id, steps, key=key)
    assert again.replayed and again.transfers == first.transfers
    assert (await ledger.balance(timebank.id, giver.account_id)).balance_minutes == 60
    with pytest.raises(IdempotencyMismatch):
        await ledger.post_batch(timebank.id, steps[:1], key=key)


async def test_batch_refuses_invalid_steps_and_foreign_accounts(ledger, participants, timebank):
    from tests.conftest import unique_slug

    giver, receiver = await two_members(participants, timebank)
    other = await participants.create_timebank(unique_slug(), "Hillside")
    stranger = await participants.enrol(other, "member", "Stranger")
    with pytest.raises(ValidationFailed):
        await ledger.post_batch(timebank.id, [])
    with pytest.raises(ValidationFailed):
        await ledger.post_batch(
            timebank.id, [TransferRequest(giver.account_id, giver.account_id, 10)]
        )
    with pytest.raises(ValidationFailed):
        await ledger.post_batch(
            timebank.id, [TransferRequest(receiver.account_id, giver.account_id, 481)]
        )
    with pytest.raises(NotFound):
        await ledger.post_batch(
            timebank.id, [TransferRequest(stranger.account_id, giver.account_id, 10)]
        )
    assert (await ledger.balance(timebank.id, giver.account_id)).version == 0
