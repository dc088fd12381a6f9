"""PostgreSQL itself refuses every attempt to break the ledger invariants I1-I9, and a group
session's legs to disagree with it (DESIGN.md §2).

Each test sets up honest state through the service, then attacks it with raw SQL on a plain
asyncpg superuser connection, bypassing Python entirely. It asserts that the database refuses
with the exception class, SQLSTATE, constraint or message of the rule meant to stop that attack
(custom SQLSTATEs: TBIN0 invariant violated, TBVA0 invalid request, TBST0 invalid state
transition), and that nothing in the timebank changed.

Attacks inside ``async with raw.transaction()`` are refused either at the statement or, for
the deferred constraint triggers, at COMMIT; in both cases the whole transaction is rolled back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest

from tests.conftest import unique_slug
from timebank.ledger import IdempotencyKey
from timebank.ledger.audit import audit

INVARIANT = "TBIN0"
INVALID_REQUEST = "TBVA0"
INVALID_STATE = "TBST0"


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


@contextmanager
def refused(
    exc_type: type[asyncpg.PostgresError] = asyncpg.PostgresError,
    *,
    sqlstate: str | None = None,
    constraint: str | set[str] | None = None,
    match: str | None = None,
) -> Iterator[pytest.ExceptionInfo[asyncpg.PostgresError]]:
    """Expect PostgreSQL to refuse, and check that it was the expected rule that refused."""
    with pytest.raises(exc_type, match=match) as info:
        yield info
    error = info.value
    if sqlstate is not None:
        assert error.sqlstate == sqlstate, f"{error.sqlstate}: {error}"
    if constraint is not None:
        wanted = {constraint} if isinstance(constraint, str) else constraint
        assert error.constraint_name in wanted, f"{error.constraint_name}: {error}"


async def ledger_state(raw: asyncpg.Connection, timebank_id: int) -> dict[str, list[dict]]:
    """Every ledger row of one timebank, to show that a refused attack changed nothing."""
    queries = {
        "accounts": "SELECT * FROM accounts WHERE timebank_id = $1 ORDER BY id",
        "transfers": "SELECT * FROM transfers WHERE timebank_id = $1 ORDER BY id",
        "postings": "SELECT * FROM postings WHERE timebank_id = $1 ORDER BY id",
        "pending_transfers": "SELECT * FROM pending_transfers WHERE timebank_id = $1 ORDER BY id",
        "idempotency_keys": (
            "SELECT * FROM idempotency_keys WHERE timebank_id = $1 ORDER BY author, key"
        ),
    }
    return {
        name: [dict(row) for row in await raw.fetch(sql, timebank_id)]
        for name, sql in queries.items()
    }


async def timebank_sum(raw: asyncpg.Connection, timebank_id: int) -> int:
    return await raw.fetchval(
        "SELECT coalesce(sum(balance), 0) FROM accounts WHERE timebank_id = $1", timebank_id
    )


async def account(raw: asyncpg.Connection, account_id: int) -> asyncpg.Record:
    return await raw.fetchrow(
        "SELECT balance, pending_in, pending_out, version FROM accounts WHERE id = $1", account_id
    )


async def two_members(participants, timebank) -> tuple[int, int]:
    """(receiver, giver) account ids: the receiver is debited, the giver credited."""
    receiver = await participants.enrol(timebank, "member", "Bea Receiver")
    giver = await participants.enrol(timebank, "member", "Ada Giver")
    return receiver.account_id, giver.account_id


async def forge_move(
    raw: asyncpg.Connection, account_id: int, delta: int, versions: int = 1
) -> asyncpg.Record:
    """Move an account's balance as a posting would, returning (balance, version)."""
    return await raw.fetchrow(
        "UPDATE accounts SET balance = balance + $2, version = version + $3"
        " WHERE id = $1 RETURNING balance, version",
        account_id,
        delta,
        versions,
    )


async def forge_transfer(
    raw: asyncpg.Connection,
    timebank_id: int,
    debit: int,
    credit: int,
    minutes: int,
    kind: str = "exchange",
    *,
    pending_id: int | None = None,
    reverses_id: int | None = None,
) -> int:
    return await raw.fetchval(
        "INSERT INTO transfers (timebank_id, debit_account_id, credit_account_id, minutes, kind,"
        " pending_transfer_id, reverses_transfer_id) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " RETURNING id",
        timebank_id,
        debit,
        credit,
        minutes,
        kind,
        pending_id,
        reverses_id,
    )


async def forge_posting(
    raw: asyncpg.Connection,
    timebank_id: int,
    transfer_id: int,
    account_id: int,
    minutes: int,
    balance_after: int,
    version: int,
) -> None:
    await raw.execute(
        "INSERT INTO postings (timebank_id, transfer_id, account_id, minutes, balance_after,"
        " account_version) VALUES ($1, $2, $3, $4, $5, $6)",
        timebank_id,
        transfer_id,
        account_id,
        minutes,
        balance_after,
        version,
    )


async def forge_full_transfer(
    raw: asyncpg.Connection,
    timebank_id: int,
    debit: int,
    credit: int,
    minutes: int,
    kind: str = "exchange",
    *,
    pending_id: int | None = None,
    reverses_id: int | None = None,
) -> int:
    """Everything ledger_apply_transfer does, by hand: move both accounts in ascending id
    order (releasing the reservation's pending amounts), write the transfer and both legs."""
    released = minutes if pending_id is not None else 0
    moved: dict[int, asyncpg.Record] = {}
    for account_id in sorted((debit, credit)):
        delta = -minutes if account_id == debit else minutes
        moved[account_id] = await raw.fetchrow(
            "UPDATE accounts SET balance = balance + $2, version = version + 1,"
            " pending_out = pending_out - $3, pending_in = pending_in - $4"
            " WHERE id = $1 RETURNING balance, version",
            account_id,
            delta,
            released if account_id == debit else 0,
            released if account_id == credit else 0,
        )
    transfer_id = await forge_transfer(
        raw,
        timebank_id,
        debit,
        credit,
        minutes,
        kind,
        pending_id=pending_id,
        reverses_id=reverses_id,
    )
    for account_id, leg in ((debit, -minutes), (credit, minutes)):
        balance, version = moved[account_id]
        await forge_posting(raw, timebank_id, transfer_id, account_id, leg, balance, version)
    return transfer_id


# ------------------------------------------------------------------------------------------------
# The forger itself is honest: the same raw SQL, done right, is accepted.
# ------------------------------------------------------------------------------------------------


async def test_a_correctly_forged_transfer_is_accepted(raw, ledger, participants, timebank):
    """Control for every attack below: the raw helpers follow the rules, so a refusal in a
    test is caused by the one thing that test changes."""
    receiver, giver = await two_members(participants, timebank)
    async with raw.transaction():
        await forge_full_transfer(raw, timebank.id, receiver, giver, 60)
    assert (await ledger.balance(timebank.id, giver)).balance_minutes == 60
    assert (await ledger.balance(timebank.id, receiver)).balance_minutes == -60


# ------------------------------------------------------------------------------------------------
# I1: every transfer's postings sum to zero.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["credit", "debit"])
async def test_i1_transfer_with_one_leg_is_refused_at_commit(
    raw, ledger, participants, timebank, side
):
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 90)
    before = await ledger_state(raw, timebank.id)
    account_id, leg = (giver, 30) if side == "credit" else (receiver, -30)
    with refused(sqlstate=INVARIANT, match=rf"has 1 postings summing to {leg}"):
        async with raw.transaction():
            balance, version = await forge_move(raw, account_id, leg)
            transfer_id = await forge_transfer(raw, timebank.id, receiver, giver, 30)
            await forge_posting(raw, timebank.id, transfer_id, account_id, leg, balance, version)
    assert await ledger_state(raw, timebank.id) == before


async def test_i1_transfer_with_no_postings_is_refused_at_commit(
    raw, ledger, participants, timebank
):
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 90)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="has 0 postings summing to 0"):
        async with raw.transaction():
            await forge_transfer(raw, timebank.id, receiver, giver, 30)
    assert await ledger_state(raw, timebank.id) == before


@pytest.mark.parametrize("named", ["no transfer", "a transfer of another timebank"])
async def test_i1_posting_must_name_a_transfer_of_its_timebank(
    raw, ledger, participants, timebank, named
):
    """Checked by the posting's leg trigger (0011), which reads the transfer anyway."""
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 90)
    other = await participants.create_timebank(unique_slug(), "Hillside Timebank")
    stranger_a, stranger_b = await two_members(participants, other)
    theirs = (await ledger.post_transfer(other.id, stranger_a, stranger_b, 45)).transfer
    transfer_id = theirs.id if named == "a transfer of another timebank" else theirs.id + 1000
    before = await ledger_state(raw, timebank.id), await ledger_state(raw, other.id)
    with refused(
        sqlstate=INVARIANT,
        match=rf"names transfer {transfer_id}, which is not a transfer of timebank {timebank.id}",
    ):
        async with raw.transaction():
            balance, version = await forge_move(raw, giver, 45)
            await forge_posting(raw, timebank.id, transfer_id, giver, 45, balance, version)
    assert (await ledger_state(raw, timebank.id), await ledger_state(raw, other.id)) == before


async def test_i2_posting_on_an_account_of_another_timebank_is_refused(
    raw, ledger, participants, timebank
):
    """A leg may only move its transfer's own accounts, which the transfer's foreign keys hold
    to its timebank."""
    receiver, giver = await two_members(participants, timebank)
    other = await participants.create_timebank(unique_slug(), "Hillside Timebank")
    stranger = (await participants.enrol(other, "member", "Stranger")).account_id
    before = await ledger_state(raw, timebank.id), await ledger_state(raw, other.id)
    with refused(sqlstate=INVARIANT, match=rf"posting of 30 on account {stranger} does not match"):
        async with raw.transaction():
            transfer_id = await forge_transfer(raw, timebank.id, receiver, giver, 30)
            balance, version = await forge_move(raw, stranger, 30)
            await forge_posting(raw, timebank.id, transfer_id, stranger, 30, balance, version)
    assert (await ledger_state(raw, timebank.id), await ledger_state(raw, other.id)) == before


@pytest.mark.parametrize(
    ("on", "minutes"),
    [
        pytest.param("debit", 30, id="debit-leg-with-the-wrong-sign"),
        pytest.param("debit", -29, id="debit-leg-one-short"),
        pytest.param("credit", 31, id="credit-leg-one-over"),
        pytest.param("bystander", 30, id="leg-on-an-account-outside-the-transfer"),
    ],
)
async def test_i1_leg_that_does_not_balance_its_transfer_is_refused(
    raw, ledger, participants, timebank, on, minutes
):
    receiver, giver = await two_members(participants, timebank)
    bystander = (await participants.enrol(timebank, "member", "Cy Bystander")).account_id
    await ledger.post_transfer(timebank.id, receiver, giver, 90)
    before = await ledger_state(raw, timebank.id)
    account_id = {"debit": receiver, "credit": giver, "bystander": bystander}[on]
    with refused(sqlstate=INVARIANT, match="does not match transfer"):
        async with raw.transaction():
            transfer_id = await forge_transfer(raw, timebank.id, receiver, giver, 30)
            # The account row agrees with the leg, so only the leg-matches-transfer rule is left.
            balance, version = await forge_move(raw, account_id, minutes)
            await forge_posting(
                raw, timebank.id, transfer_id, account_id, minutes, balance, version
            )
    assert await ledger_state(raw, timebank.id) == before


async def test_i1_extra_leg_on_a_posted_transfer_is_refused(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    posted = await ledger.post_transfer(timebank.id, receiver, giver, 90)
    before = await ledger_state(raw, timebank.id)
    with refused(
        asyncpg.exceptions.UniqueViolationError, constraint="postings_transfer_id_account_id_key"
    ):
        async with raw.transaction():
            balance, version = await forge_move(raw, giver, 90)
            await forge_posting(raw, timebank.id, posted.transfer.id, giver, 90, balance, version)
    assert await ledger_state(raw, timebank.id) == before


# ------------------------------------------------------------------------------------------------
# I2: minutes > 0 and within the timebank's maximum per exchange; debit ≠ credit; both accounts
# in the same timebank.
# ------------------------------------------------------------------------------------------------

_TRANSFER_SQL = (
    "INSERT INTO transfers (timebank_id, debit_account_id, credit_account_id, minutes, kind)"
    " VALUES ($1, $2, $3, $4, 'exchange')"
)
_RESERVATION_SQL = (
    "INSERT INTO pending_transfers (timebank_id, debit_account_id, credit_account_id, minutes,"
    " kind) VALUES ($1, $2, $3, $4, 'exchange')"
)
_TABLES = [
    pytest.param(_TRANSFER_SQL, "transfers", id="transfer"),
    pytest.param(_RESERVATION_SQL, "pending_transfers", id="reservation"),
]


@pytest.mark.parametrize("minutes", [0, -60])
@pytest.mark.parametrize(("sql", "table"), _TABLES)
async def test_i2_zero_or_negative_minutes_are_refused(
    raw, participants, timebank, sql, table, minutes
):
    receiver, giver = await two_members(participants, timebank)
    before = await ledger_state(raw, timebank.id)
    with refused(asyncpg.exceptions.CheckViolationError, constraint=f"{table}_minutes_positive"):
        async with raw.transaction():
            await raw.execute(sql, timebank.id, receiver, giver, minutes)
    assert await ledger_state(raw, timebank.id) == before


@pytest.mark.parametrize(("sql", "table"), _TABLES)
async def test_i2_exchange_above_the_timebank_maximum_is_refused(
    raw, participants, timebank, sql, table
):
    receiver, giver = await two_members(participants, timebank)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVALID_REQUEST, match="above this timebank's maximum of 480 minutes"):
        async with raw.transaction():
            await raw.execute(sql, timebank.id, receiver, giver, 481)
    assert await ledger_state(raw, timebank.id) == before


async def test_i2_forged_exchange_above_the_maximum_is_refused_even_when_it_balances(
    raw, participants, timebank
):
    """The full, otherwise consistent posting of 481 minutes: the maximum alone refuses it."""
    receiver, giver = await two_members(participants, timebank)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVALID_REQUEST, match="above this timebank's maximum"):
        async with raw.transaction():
            await forge_full_transfer(raw, timebank.id, receiver, giver, 481)
    assert await ledger_state(raw, timebank.id) == before


@pytest.mark.parametrize(("sql", "table"), _TABLES)
async def test_i2_transfer_from_an_account_to_itself_is_refused(
    raw, participants, timebank, sql, table
):
    receiver, _ = await two_members(participants, timebank)
    before = await ledger_state(raw, timebank.id)
    with refused(asyncpg.exceptions.CheckViolationError, constraint=f"{table}_distinct_accounts"):
        async with raw.transaction():
            await raw.execute(sql, timebank.id, receiver, receiver, 60)
    assert await ledger_state(raw, timebank.id) == before


@pytest.mark.parametrize("stranger_side", ["debit", "credit"])
@pytest.mark.parametrize(("sql", "table"), _TABLES)
async def test_i2_account_of_another_timebank_is_refused(
    raw, participants, timebank, sql, table, stranger_side
):
    member, _ = await two_members(participants, timebank)
    other = await participants.create_timebank(unique_slug(), "Hillside Timebank")
    stranger = (await participants.enrol(other, "member", "Stranger")).account_id
    before = await ledger_state(raw, timebank.id), await ledger_state(raw, other.id)
    debit, credit = (stranger, member) if stranger_side == "debit" else (member, stranger)
    with refused(
        asyncpg.exceptions.ForeignKeyViolationError, constraint=f"{table}_{stranger_side}_fkey"
    ):
        async with raw.transaction():
            await raw.execute(sql, timebank.id, debit, credit, 60)
    assert (await ledger_state(raw, timebank.id), await ledger_state(raw, other.id)) == before


# ------------------------------------------------------------------------------------------------
# I3: an account's balance is the sum of its postings; its versions have no gaps.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "assignment",
    [
        pytest.param("balance = balance + 60", id="balance-only"),
        pytest.param("balance = balance + 60, version = version + 1", id="balance-and-version"),
        pytest.param("version = version + 1", id="version-only"),
        pytest.param("balance = balance - 30", id="balance-down"),
    ],
)
async def test_i3_account_changed_without_a_posting_is_refused_at_commit(
    raw, ledger, participants, timebank, assignment
):
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 90)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="but its postings end at 90 at version 1"):
        async with raw.transaction():
            await raw.execute(f"UPDATE accounts SET {assignment} WHERE id = $1", giver)
    assert await ledger_state(raw, timebank.id) == before


async def test_i3_account_rewound_after_its_posting_is_refused_at_commit(
    raw, ledger, participants, timebank
):
    """A correct forged posting, then the account row put back: caught at commit."""
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 90)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="but its postings end at 120 at version 2"):
        async with raw.transaction():
            await forge_full_transfer(raw, timebank.id, receiver, giver, 30)
            await raw.execute("UPDATE accounts SET balance = 90, version = 1 WHERE id = $1", giver)
    assert await ledger_state(raw, timebank.id) == before


async def test_i3_posting_that_skips_a_version_is_refused(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 90)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="skips to version 3 \\(no version 2\\)"):
        async with raw.transaction():
            transfer_id = await forge_transfer(raw, timebank.id, receiver, giver, 30)
            balance, version = await forge_move(raw, giver, 30, versions=2)
            assert (balance, version) == (120, 3)
            await forge_posting(raw, timebank.id, transfer_id, giver, 30, balance, version)
    assert await ledger_state(raw, timebank.id) == before


async def test_i3_posting_with_a_wrong_balance_after_is_refused(
    raw, ledger, participants, timebank
):
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 90)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="claims balance 130 but 90 \\+ 30 = 120"):
        async with raw.transaction():
            transfer_id = await forge_transfer(raw, timebank.id, receiver, giver, 30)
            # The account row is made to agree with the lie; the chain still refuses it.
            balance, version = await forge_move(raw, giver, 40)
            await forge_posting(raw, timebank.id, transfer_id, giver, 30, balance, version)
    assert await ledger_state(raw, timebank.id) == before


async def test_i3_posting_that_disagrees_with_its_account_row_is_refused(
    raw, ledger, participants, timebank
):
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 90)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="disagrees with the account \\(balance 90 at version 1"):
        async with raw.transaction():
            transfer_id = await forge_transfer(raw, timebank.id, receiver, giver, 30)
            await forge_posting(raw, timebank.id, transfer_id, giver, 30, 120, 2)
    assert await ledger_state(raw, timebank.id) == before


async def test_i3_second_posting_at_the_same_account_version_is_refused(
    raw, ledger, participants, timebank
):
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 90)
    before = await ledger_state(raw, timebank.id)
    with refused(
        asyncpg.exceptions.UniqueViolationError,
        constraint="postings_account_id_account_version_key",
    ):
        async with raw.transaction():
            transfer_id = await forge_transfer(raw, timebank.id, receiver, giver, 30)
            # A second "version 1" that is consistent on its own: 0 + 30 = 30 at version 1.
            await raw.execute("UPDATE accounts SET balance = 30 WHERE id = $1", giver)
            await forge_posting(raw, timebank.id, transfer_id, giver, 30, 30, 1)
    assert await ledger_state(raw, timebank.id) == before


# ------------------------------------------------------------------------------------------------
# I4: the balances of a timebank sum to zero.
# ------------------------------------------------------------------------------------------------


async def test_i4_minutes_minted_on_the_unlimited_community_fund_are_refused_at_commit(
    raw, ledger, participants, timebank
):
    """The fund has no floor or ceiling, so only the postings check stands in the way."""
    _, giver = await two_members(participants, timebank)
    fund = timebank.community_fund_account_id
    await ledger.post_transfer(timebank.id, fund, giver, 120, kind="grant")
    before = await ledger_state(raw, timebank.id)
    assert await timebank_sum(raw, timebank.id) == 0
    with refused(sqlstate=INVARIANT, match=f"account {fund} has balance 880 at version 2"):
        async with raw.transaction():
            await forge_move(raw, fund, 1000)
    assert await timebank_sum(raw, timebank.id) == 0
    assert await ledger_state(raw, timebank.id) == before


async def test_i4_minutes_minted_by_a_one_sided_grant_are_refused_at_commit(
    raw, participants, timebank
):
    _, giver = await two_members(participants, timebank)
    fund = timebank.community_fund_account_id
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="has 1 postings summing to 300"):
        async with raw.transaction():
            balance, version = await forge_move(raw, giver, 300)
            transfer_id = await forge_transfer(raw, timebank.id, fund, giver, 300, "grant")
            await forge_posting(raw, timebank.id, transfer_id, giver, 300, balance, version)
    assert await timebank_sum(raw, timebank.id) == 0
    assert await ledger_state(raw, timebank.id) == before


async def test_i4_account_cannot_open_with_minutes(raw, participants, timebank):
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="starts with zero balance"):
        async with raw.transaction():
            participant_id = await raw.fetchval(
                "INSERT INTO participants (timebank_id, kind, display_name)"
                " VALUES ($1, 'member', 'Dee Minted') RETURNING id",
                timebank.id,
            )
            await raw.execute(
                "INSERT INTO accounts (timebank_id, participant_id, balance, version, floor,"
                " ceiling) VALUES ($1, $2, 500, 1, -600, 1200)",
                timebank.id,
                participant_id,
            )
    assert await timebank_sum(raw, timebank.id) == 0
    assert await ledger_state(raw, timebank.id) == before


async def test_i4_account_holding_minutes_cannot_be_deleted(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 90)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match=f"account {giver} has postings and cannot be deleted"):
        async with raw.transaction():
            await raw.execute("DELETE FROM accounts WHERE id = $1", giver)
    assert await timebank_sum(raw, timebank.id) == 0
    assert await ledger_state(raw, timebank.id) == before


async def test_i4_account_holding_minutes_cannot_move_to_another_timebank(
    raw, ledger, participants, timebank
):
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 90)
    other = await participants.create_timebank(unique_slug(), "Hillside Timebank")
    before = await ledger_state(raw, timebank.id), await ledger_state(raw, other.id)
    with refused(
        asyncpg.exceptions.ForeignKeyViolationError,
        constraint={"transfers_debit_fkey", "transfers_credit_fkey"},
    ):
        async with raw.transaction():
            await raw.execute("UPDATE accounts SET timebank_id = $1 WHERE id = $2", other.id, giver)
    assert await timebank_sum(raw, timebank.id) == 0
    assert await timebank_sum(raw, other.id) == 0
    assert (await ledger_state(raw, timebank.id), await ledger_state(raw, other.id)) == before


# ------------------------------------------------------------------------------------------------
# I5: floor <= balance - pending_out and balance + pending_in <= ceiling.
# ------------------------------------------------------------------------------------------------


async def test_i5_posting_below_the_floor_is_refused(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 480)
    await ledger.post_transfer(timebank.id, receiver, giver, 120)
    before = await ledger_state(raw, timebank.id)
    with refused(asyncpg.exceptions.CheckViolationError, constraint="accounts_within_floor"):
        async with raw.transaction():
            await forge_full_transfer(raw, timebank.id, receiver, giver, 1)
    assert (await account(raw, receiver))["balance"] == -600
    assert await ledger_state(raw, timebank.id) == before


async def test_i5_posting_above_the_ceiling_is_refused(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    fund = timebank.community_fund_account_id
    await ledger.post_transfer(timebank.id, fund, giver, 1200, kind="grant")
    before = await ledger_state(raw, timebank.id)
    with refused(asyncpg.exceptions.CheckViolationError, constraint="accounts_within_ceiling"):
        async with raw.transaction():
            await forge_full_transfer(raw, timebank.id, receiver, giver, 1)
    assert (await account(raw, giver))["balance"] == 1200
    assert await ledger_state(raw, timebank.id) == before


async def test_i5_reservation_beyond_the_floor_is_refused(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    await ledger.reserve(timebank.id, receiver, giver, 400)
    before = await ledger_state(raw, timebank.id)
    with refused(asyncpg.exceptions.CheckViolationError, constraint="accounts_within_floor"):
        async with raw.transaction():
            await raw.execute(_RESERVATION_SQL, timebank.id, receiver, giver, 201)
            await raw.execute(
                "UPDATE accounts SET pending_in = pending_in + 201 WHERE id = $1", giver
            )
            await raw.execute(
                "UPDATE accounts SET pending_out = pending_out + 201 WHERE id = $1", receiver
            )
    assert tuple(await account(raw, receiver)) == (0, 0, 400, 0)
    assert await ledger_state(raw, timebank.id) == before


async def test_i5_reservation_beyond_the_ceiling_is_refused(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    fund = timebank.community_fund_account_id
    await ledger.post_transfer(timebank.id, fund, giver, 1000, kind="grant")
    await ledger.reserve(timebank.id, receiver, giver, 200)
    before = await ledger_state(raw, timebank.id)
    with refused(asyncpg.exceptions.CheckViolationError, constraint="accounts_within_ceiling"):
        async with raw.transaction():
            await raw.execute(_RESERVATION_SQL, timebank.id, receiver, giver, 1)
            await raw.execute(
                "UPDATE accounts SET pending_out = pending_out + 1 WHERE id = $1", receiver
            )
            await raw.execute(
                "UPDATE accounts SET pending_in = pending_in + 1 WHERE id = $1", giver
            )
    assert tuple(await account(raw, giver)) == (1000, 200, 0, 1)
    assert await ledger_state(raw, timebank.id) == before


@pytest.mark.parametrize(
    "assignment",
    [
        pytest.param("pending_out = pending_out - 400", id="hold-released-while-reserved"),
        pytest.param("pending_out = pending_out + 10", id="hold-raised-without-reservation"),
    ],
)
async def test_i5_pending_amounts_changed_without_a_reservation_are_refused_at_commit(
    raw, ledger, participants, timebank, assignment
):
    receiver, giver = await two_members(participants, timebank)
    await ledger.reserve(timebank.id, receiver, giver, 400)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="but its open reservations hold in 0/out 400"):
        async with raw.transaction():
            await raw.execute(f"UPDATE accounts SET {assignment} WHERE id = $1", receiver)
    assert await ledger_state(raw, timebank.id) == before


@pytest.mark.parametrize(
    ("whose", "assignment", "constraint"),
    [
        pytest.param("receiver", "floor = NULL", "accounts_participant_has_limits", id="no-floor"),
        pytest.param("giver", "ceiling = NULL", "accounts_participant_has_limits", id="no-ceiling"),
        pytest.param("receiver", "floor = -400", "accounts_within_floor", id="floor-over-hold"),
        pytest.param("giver", "ceiling = 400", "accounts_within_ceiling", id="ceiling-under-hold"),
        pytest.param("receiver", "floor = 10", "accounts_limits_around_zero", id="floor-above-0"),
        pytest.param("receiver", "ceiling = -1", "accounts_limits_around_zero", id="ceiling-lt-0"),
        pytest.param(
            "receiver", "pending_in = -5", "accounts_pending_in_not_negative", id="negative-hold"
        ),
    ],
)
async def test_i5_member_limits_cannot_be_lifted_or_squeezed_past_the_account(
    raw, ledger, participants, timebank, whose, assignment, constraint
):
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 200)
    await ledger.reserve(timebank.id, receiver, giver, 250)
    # receiver: balance -200, pending_out 250 (room down to -450); giver: 200 + 250 pending in.
    before = await ledger_state(raw, timebank.id)
    account_id = receiver if whose == "receiver" else giver
    with refused(asyncpg.exceptions.CheckViolationError, constraint=constraint):
        async with raw.transaction():
            await raw.execute(f"UPDATE accounts SET {assignment} WHERE id = $1", account_id)
    assert await ledger_state(raw, timebank.id) == before


# ------------------------------------------------------------------------------------------------
# I6: a reservation (exchange) is posted at most once; a transfer is reversed at most once.
# ------------------------------------------------------------------------------------------------


async def test_i6_reservation_cannot_be_posted_twice(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    pending = await ledger.reserve(timebank.id, receiver, giver, 100)
    await ledger.post_pending(timebank.id, pending.pending.id)
    before = await ledger_state(raw, timebank.id)
    with refused(
        asyncpg.exceptions.UniqueViolationError, constraint="transfers_pending_transfer_id_key"
    ):
        async with raw.transaction():
            await forge_move(raw, receiver, -100)
            await forge_move(raw, giver, 100)
            await forge_transfer(
                raw, timebank.id, receiver, giver, 100, pending_id=pending.pending.id
            )
    assert await ledger_state(raw, timebank.id) == before


async def test_i6_transfer_cannot_post_a_reservation_that_is_still_pending(
    raw, ledger, participants, timebank
):
    receiver, giver = await two_members(participants, timebank)
    pending = await ledger.reserve(timebank.id, receiver, giver, 100)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="does not match reservation"):
        async with raw.transaction():
            await forge_full_transfer(
                raw, timebank.id, receiver, giver, 100, pending_id=pending.pending.id
            )
    assert await ledger_state(raw, timebank.id) == before


async def test_i6_transfer_must_match_the_reservation_it_posts(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    pending = await ledger.reserve(timebank.id, receiver, giver, 100)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="does not match reservation"):
        async with raw.transaction():
            await raw.execute(
                "UPDATE pending_transfers SET state = 'posted', resolved_at = now() WHERE id = $1",
                pending.pending.id,
            )
            await forge_transfer(
                raw, timebank.id, receiver, giver, 99, pending_id=pending.pending.id
            )
    assert await ledger_state(raw, timebank.id) == before


async def test_i6_reservation_marked_posted_without_a_transfer_is_refused_at_commit(
    raw, ledger, participants, timebank
):
    receiver, giver = await two_members(participants, timebank)
    pending = await ledger.reserve(timebank.id, receiver, giver, 100)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="marked posted but no transfer posts it"):
        async with raw.transaction():
            await raw.execute(
                "UPDATE pending_transfers SET state = 'posted', resolved_at = now() WHERE id = $1",
                pending.pending.id,
            )
            # Release the holds too, so the only thing wrong is the missing transfer.
            await raw.execute(
                "UPDATE accounts SET pending_out = pending_out - 100 WHERE id = $1", receiver
            )
            await raw.execute(
                "UPDATE accounts SET pending_in = pending_in - 100 WHERE id = $1", giver
            )
    assert await ledger_state(raw, timebank.id) == before


@pytest.mark.parametrize("new_state", ["voided", "pending", "posted"])
async def test_i6_posted_reservation_cannot_change_state_again(
    raw, ledger, participants, timebank, new_state
):
    receiver, giver = await two_members(participants, timebank)
    pending = await ledger.reserve(timebank.id, receiver, giver, 100)
    await ledger.post_pending(timebank.id, pending.pending.id)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVALID_STATE, match=f"is posted and cannot become {new_state}"):
        async with raw.transaction():
            await raw.execute(
                "UPDATE pending_transfers SET state = $2,"
                " resolved_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END WHERE id = $1",
                pending.pending.id,
                new_state,
            )
    assert await ledger_state(raw, timebank.id) == before


async def test_i6_transfer_cannot_be_reversed_twice(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    posted = await ledger.post_transfer(timebank.id, receiver, giver, 45)
    await ledger.reverse(timebank.id, posted.transfer.id, "logged twice by mistake")
    before = await ledger_state(raw, timebank.id)
    with refused(
        asyncpg.exceptions.UniqueViolationError, constraint="transfers_reverses_transfer_id_key"
    ):
        async with raw.transaction():
            await forge_full_transfer(
                raw, timebank.id, giver, receiver, 45, "reversal", reverses_id=posted.transfer.id
            )
    assert await ledger_state(raw, timebank.id) == before


async def test_i6_two_reversals_in_one_transaction_are_refused(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    posted = await ledger.post_transfer(timebank.id, receiver, giver, 45)
    before = await ledger_state(raw, timebank.id)
    with refused(
        asyncpg.exceptions.UniqueViolationError, constraint="transfers_reverses_transfer_id_key"
    ):
        async with raw.transaction():
            for _ in range(2):
                await forge_full_transfer(
                    raw,
                    timebank.id,
                    giver,
                    receiver,
                    45,
                    "reversal",
                    reverses_id=posted.transfer.id,
                )
    assert await ledger_state(raw, timebank.id) == before


async def test_i6_reversal_cannot_itself_be_reversed(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    posted = await ledger.post_transfer(timebank.id, receiver, giver, 45)
    reversal = await ledger.reverse(timebank.id, posted.transfer.id, "logged twice by mistake")
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVALID_STATE, match="is a reversal and cannot itself be reversed"):
        async with raw.transaction():
            await forge_full_transfer(
                raw, timebank.id, receiver, giver, 45, "reversal", reverses_id=reversal.transfer.id
            )
    assert await ledger_state(raw, timebank.id) == before


@pytest.mark.parametrize(
    ("debit_is_giver", "minutes"),
    [
        pytest.param(True, 30, id="fewer-minutes"),
        pytest.param(False, 45, id="same-direction-again"),
    ],
)
async def test_i6_reversal_must_mirror_the_transfer_it_reverses(
    raw, ledger, participants, timebank, debit_is_giver, minutes
):
    receiver, giver = await two_members(participants, timebank)
    posted = await ledger.post_transfer(timebank.id, receiver, giver, 45)
    before = await ledger_state(raw, timebank.id)
    debit, credit = (giver, receiver) if debit_is_giver else (receiver, giver)
    with refused(sqlstate=INVARIANT, match="same minutes back between the same accounts"):
        async with raw.transaction():
            await forge_full_transfer(
                raw, timebank.id, debit, credit, minutes, "reversal", reverses_id=posted.transfer.id
            )
    assert await ledger_state(raw, timebank.id) == before


# ------------------------------------------------------------------------------------------------
# I7: posted history is append-only.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param(
            "UPDATE transfers SET minutes = minutes + 1 WHERE id = $1", id="transfer-minutes"
        ),
        pytest.param(
            "UPDATE transfers SET memo = 'edited later' WHERE id = $1", id="transfer-memo"
        ),
        pytest.param(
            "UPDATE transfers SET credit_account_id = debit_account_id,"
            " debit_account_id = credit_account_id WHERE id = $1",
            id="transfer-direction",
        ),
        pytest.param("DELETE FROM transfers WHERE id = $1", id="transfer-delete"),
        pytest.param(
            "UPDATE postings SET minutes = minutes * 2, balance_after = balance_after * 2"
            " WHERE transfer_id = $1",
            id="posting-minutes",
        ),
        pytest.param(
            "UPDATE postings SET created_at = created_at - interval '1 day' WHERE transfer_id = $1",
            id="posting-backdated",
        ),
        pytest.param("DELETE FROM postings WHERE transfer_id = $1", id="posting-delete"),
    ],
)
async def test_i7_posted_transfers_and_postings_cannot_be_updated_or_deleted(
    raw, ledger, participants, timebank, sql
):
    receiver, giver = await two_members(participants, timebank)
    posted = await ledger.post_transfer(timebank.id, receiver, giver, 90)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="posted history is append-only"):
        async with raw.transaction():
            await raw.execute(sql, posted.transfer.id)
    assert await ledger_state(raw, timebank.id) == before


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("TRUNCATE postings", id="postings"),
        pytest.param("TRUNCATE transfers CASCADE", id="transfers-cascade"),
        pytest.param("TRUNCATE transfers, postings CASCADE", id="both"),
    ],
)
async def test_i7_posted_history_cannot_be_truncated(raw, ledger, participants, timebank, sql):
    receiver, giver = await two_members(participants, timebank)
    await ledger.post_transfer(timebank.id, receiver, giver, 90)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="^TRUNCATE on (transfers|postings) refused"):
        async with raw.transaction():
            await raw.execute(sql)
    assert await ledger_state(raw, timebank.id) == before


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        pytest.param(
            "DELETE FROM pending_transfers WHERE id = $1",
            "void one instead of deleting it",
            id="delete",
        ),
        pytest.param(
            "UPDATE pending_transfers SET minutes = 1 WHERE id = $1",
            "cannot be altered",
            id="minutes",
        ),
        pytest.param(
            "UPDATE pending_transfers SET credit_account_id = debit_account_id,"
            " debit_account_id = credit_account_id WHERE id = $1",
            "cannot be altered",
            id="direction",
        ),
    ],
)
async def test_i7_reservations_cannot_be_deleted_or_altered(
    raw, ledger, participants, timebank, sql, message
):
    receiver, giver = await two_members(participants, timebank)
    pending = await ledger.reserve(timebank.id, receiver, giver, 100)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match=message):
        async with raw.transaction():
            await raw.execute(sql, pending.pending.id)
    assert await ledger_state(raw, timebank.id) == before


# ------------------------------------------------------------------------------------------------
# I8: a request retried with the same idempotency key creates nothing new.
# ------------------------------------------------------------------------------------------------

_KEY = IdempotencyKey(author="member:7", key="tap-42")
_OTHER_HASH = hashlib.sha256(b"a different request").digest()


async def post_with_key(ledger, participants, timebank) -> tuple[int, int, Any]:
    receiver, giver = await two_members(participants, timebank)
    first = await ledger.post_transfer(timebank.id, receiver, giver, 30, key=_KEY)
    return receiver, giver, first


async def assert_retry_replays(ledger, timebank, receiver, giver, first) -> None:
    again = await ledger.post_transfer(timebank.id, receiver, giver, 30, key=_KEY)
    assert again.replayed
    assert again.transfer == first.transfer
    assert (await ledger.balance(timebank.id, giver)).balance_minutes == 30


async def test_i8_same_idempotency_key_cannot_be_stored_twice(raw, ledger, participants, timebank):
    receiver, giver, first = await post_with_key(ledger, participants, timebank)
    before = await ledger_state(raw, timebank.id)
    with refused(asyncpg.exceptions.UniqueViolationError, constraint="idempotency_keys_pkey"):
        async with raw.transaction():
            await raw.execute(
                "INSERT INTO idempotency_keys (timebank_id, author, key, request_hash, result)"
                " VALUES ($1, $2, $3, $4, '{\"transfer_id\": 0}')",
                timebank.id,
                _KEY.author,
                _KEY.key,
                _OTHER_HASH,
            )
    assert await ledger_state(raw, timebank.id) == before
    await assert_retry_replays(ledger, timebank, receiver, giver, first)


async def test_i8_upsert_cannot_overwrite_a_stored_key(raw, ledger, participants, timebank):
    receiver, giver, first = await post_with_key(ledger, participants, timebank)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="already answered; it cannot be changed"):
        async with raw.transaction():
            await raw.execute(
                "INSERT INTO idempotency_keys (timebank_id, author, key, request_hash, result)"
                " VALUES ($1, $2, $3, $4, NULL) ON CONFLICT (timebank_id, author, key)"
                " DO UPDATE SET request_hash = EXCLUDED.request_hash, result = EXCLUDED.result",
                timebank.id,
                _KEY.author,
                _KEY.key,
                _OTHER_HASH,
            )
    assert await ledger_state(raw, timebank.id) == before
    await assert_retry_replays(ledger, timebank, receiver, giver, first)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            "UPDATE idempotency_keys SET request_hash = sha256('a different request'::bytea)",
            "already answered; it cannot be changed",
            id="request-hash",
        ),
        pytest.param(
            "UPDATE idempotency_keys SET result = '{\"transfer_id\": 0}'",
            "already answered; it cannot be changed",
            id="result",
        ),
        pytest.param(
            "UPDATE idempotency_keys SET result = NULL",
            "already answered; it cannot be changed",
            id="result-cleared",
        ),
        pytest.param(
            "UPDATE idempotency_keys SET key = key || '-moved'",
            "already answered; it cannot be changed",
            id="key-renamed",
        ),
        pytest.param(
            "UPDATE idempotency_keys SET author = 'member:8'",
            "already answered; it cannot be changed",
            id="author",
        ),
        pytest.param("DELETE FROM idempotency_keys", "idempotency keys are kept", id="delete"),
    ],
)
async def test_i8_stored_idempotency_key_cannot_be_changed_or_deleted(
    raw, ledger, participants, timebank, change, message
):
    receiver, giver, first = await post_with_key(ledger, participants, timebank)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match=message):
        async with raw.transaction():
            await raw.execute(
                f"{change} WHERE timebank_id = $1 AND author = $2 AND key = $3",
                timebank.id,
                _KEY.author,
                _KEY.key,
            )
    assert await ledger_state(raw, timebank.id) == before
    await assert_retry_replays(ledger, timebank, receiver, giver, first)


# ------------------------------------------------------------------------------------------------
# Attacks that once got through, kept so they stay refused
# ------------------------------------------------------------------------------------------------


async def test_i5_reservation_that_holds_nothing_is_refused_at_commit(
    raw, ledger, participants, timebank
):
    receiver, giver = await two_members(participants, timebank)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="open reservations hold"):
        async with raw.transaction():
            await raw.execute(
                "INSERT INTO pending_transfers (timebank_id, debit_account_id,"
                " credit_account_id, minutes, kind) VALUES ($1, $2, $3, 400, 'exchange')",
                timebank.id,
                receiver,
                giver,
            )
    assert await ledger_state(raw, timebank.id) == before


async def test_i5_voided_reservation_must_release_its_hold(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    pending = await ledger.reserve(timebank.id, receiver, giver, 100)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="open reservations hold"):
        async with raw.transaction():
            await raw.execute(
                "UPDATE pending_transfers SET state = 'voided', resolved_at = now() WHERE id = $1",
                pending.pending.id,
            )
    assert await ledger_state(raw, timebank.id) == before


async def test_i6_transfer_cannot_reverse_itself(raw, ledger, participants, timebank):
    receiver, giver = await two_members(participants, timebank)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="must reverse an existing, earlier transfer"):
        async with raw.transaction():
            next_id = await raw.fetchval("SELECT coalesce(max(id), 0) + 1000 FROM transfers")
            await forge_move(raw, receiver, -300)
            await forge_move(raw, giver, 300)
            await raw.execute(
                "INSERT INTO transfers (id, timebank_id, debit_account_id, credit_account_id,"
                " minutes, kind, reverses_transfer_id) OVERRIDING SYSTEM VALUE"
                " VALUES ($1, $2, $3, $4, 300, 'reversal', $1)",
                next_id,
                timebank.id,
                receiver,
                giver,
            )
    assert await ledger_state(raw, timebank.id) == before


@pytest.mark.parametrize("table", ["idempotency_keys", "pending_transfers"])
async def test_i7_i8_keys_and_reservations_cannot_be_truncated(
    raw, ledger, participants, timebank, table
):
    receiver, giver = await two_members(participants, timebank)
    key = IdempotencyKey(author="member:7", key="truncate-me")
    await ledger.reserve(timebank.id, receiver, giver, 30, key=key)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="refused"):
        await raw.execute(f"TRUNCATE {table} CASCADE")
    assert await ledger_state(raw, timebank.id) == before
    again = await ledger.reserve(timebank.id, receiver, giver, 30, key=key)
    assert again.replayed


async def test_i8_claimed_key_without_an_answer_is_refused_at_commit(raw, participants, timebank):
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="never answered"):
        async with raw.transaction():
            await raw.execute(
                "INSERT INTO idempotency_keys (timebank_id, author, key, request_hash)"
                " VALUES ($1, 'member:9', 'half-done', $2)",
                timebank.id,
                hashlib.sha256(b"anything").digest(),
            )
    assert await ledger_state(raw, timebank.id) == before


# ------------------------------------------------------------------------------------------------
# I9: nothing moves on a closed account; a closed account stays closed.
# ------------------------------------------------------------------------------------------------


async def closed_account(ledger, participants, timebank) -> tuple[int, int]:
    """(closed, open) account ids: Ada has left with nothing, Bea is still here."""
    ada = await participants.enrol(timebank, "member", "Ada Leaver")
    bea = await participants.enrol(timebank, "member", "Bea Stayer")
    await ledger.leave(timebank.id, ada.id)
    return ada.account_id, bea.account_id


async def test_i9_posting_on_a_closed_account_is_refused(raw, ledger, participants, timebank):
    closed, open_ = await closed_account(ledger, participants, timebank)
    before = await ledger_state(raw, timebank.id)
    for debit, credit in ((open_, closed), (closed, open_)):
        with refused(asyncpg.CheckViolationError, constraint="accounts_closed_empty"):
            await raw.fetchrow(
                "SELECT * FROM ledger_post_transfer($1, $2, $3, 10, 'exchange', NULL,"
                " NULL, NULL, NULL)",
                timebank.id,
                debit,
                credit,
            )
        # Forged by hand, past the functions: the account row itself refuses to move.
        with refused(asyncpg.CheckViolationError, constraint="accounts_closed_empty"):
            async with raw.transaction():
                await forge_full_transfer(raw, timebank.id, debit, credit, 10)
    with refused(asyncpg.CheckViolationError, constraint="accounts_closed_empty"):
        await raw.execute("UPDATE accounts SET balance = 5, version = 1 WHERE id = $1", closed)
    assert await ledger_state(raw, timebank.id) == before


async def test_i9_batch_whose_legs_cancel_out_on_a_closed_account_is_refused(
    raw, ledger, participants, timebank
):
    # Moved by its net (nothing), the account would stay empty: each leg is refused instead.
    closed, open_ = await closed_account(ledger, participants, timebank)
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVALID_STATE, match="is closed"):
        await raw.fetch(
            "SELECT * FROM ledger_post_batch($1, $2::bigint[], $3::bigint[], ARRAY[30, 30],"
            " 'adjustment', NULL, NULL, NULL, NULL)",
            timebank.id,
            [open_, closed],
            [closed, open_],
        )
    # The same two legs forged by hand: the closed account's row moves by their net (its
    # balance stays zero, its version goes up by two), so only its legs can refuse.
    with refused(sqlstate=INVALID_STATE, match="is closed"):
        async with raw.transaction():
            await forge_move(raw, closed, 0, versions=2)
            moved = await forge_move(raw, open_, 0, versions=2)
            there = await forge_transfer(raw, timebank.id, open_, closed, 30, "adjustment")
            back = await forge_transfer(raw, timebank.id, closed, open_, 30, "adjustment")
            for transfer_id, account_id, leg, after, version in (
                (there, open_, -30, moved["balance"] - 30, moved["version"] - 1),
                (there, closed, 30, 30, 1),
                (back, closed, -30, 0, 2),
                (back, open_, 30, moved["balance"], moved["version"]),
            ):
                await forge_posting(raw, timebank.id, transfer_id, account_id, leg, after, version)
    assert await ledger_state(raw, timebank.id) == before


async def test_i9_reservation_on_a_closed_account_is_refused(raw, ledger, participants, timebank):
    closed, open_ = await closed_account(ledger, participants, timebank)
    before = await ledger_state(raw, timebank.id)
    for debit, credit in ((open_, closed), (closed, open_)):
        with refused(asyncpg.CheckViolationError, constraint="accounts_closed_empty"):
            await raw.fetchrow(
                "SELECT * FROM ledger_reserve($1, $2, $3, 10, 'exchange', NULL, NULL, NULL, NULL)",
                timebank.id,
                debit,
                credit,
            )
    assert await ledger_state(raw, timebank.id) == before


async def test_i9_gift_grant_opening_or_leaving_again_on_a_closed_account_is_refused(
    raw, ledger, participants, timebank
):
    closed, open_ = await closed_account(ledger, participants, timebank)
    left, stays = await raw.fetch(
        "SELECT participant_id FROM accounts WHERE id = ANY($1::bigint[]) ORDER BY id = $2 DESC",
        [closed, open_],
        closed,
    )
    left_id, stays_id = left["participant_id"], stays["participant_id"]
    before = await ledger_state(raw, timebank.id)
    for statement, args in (
        ("ledger_gift($1, 'gift', $2, $3, 10, NULL, NULL, NULL, NULL, NULL)", (stays_id, left_id)),
        ("ledger_gift($1, 'gift', $2, $3, 10, NULL, NULL, NULL, NULL, NULL)", (left_id, stays_id)),
        ("ledger_gift($1, 'gift', $2, NULL, 10, NULL, NULL, NULL, NULL, NULL)", (left_id,)),
        ("ledger_gift($1, 'grant', NULL, $2, 10, NULL, NULL, NULL, NULL, NULL)", (left_id,)),
        ("ledger_set_opening($1, $2, 10, NULL, NULL, NULL, NULL)", (left_id,)),
        ("ledger_leave($1, $2, NULL, NULL, NULL, NULL, NULL)", (left_id,)),
        ("ledger_leave($1, $2, $3, NULL, NULL, NULL, NULL)", (stays_id, left_id)),
    ):
        with refused(sqlstate=INVALID_STATE, match="has left"):
            await raw.fetchrow(f"SELECT * FROM {statement}", timebank.id, *args)
    assert await ledger_state(raw, timebank.id) == before


async def test_i9_closed_account_stays_closed_and_only_an_empty_participant_account_closes(
    raw, ledger, participants, timebank
):
    closed, open_ = await closed_account(ledger, participants, timebank)
    await ledger.post_transfer(
        timebank.id, timebank.community_fund_account_id, open_, 45, kind="grant"
    )
    before = await ledger_state(raw, timebank.id)
    with refused(sqlstate=INVALID_STATE):
        await raw.execute("UPDATE accounts SET closed_at = NULL WHERE id = $1", closed)
    with refused(asyncpg.CheckViolationError, constraint="accounts_closed_empty"):
        await raw.execute("UPDATE accounts SET closed_at = now() WHERE id = $1", open_)
    with refused(asyncpg.CheckViolationError):
        await raw.execute(
            "UPDATE accounts SET closed_at = now() WHERE id = $1",
            timebank.community_fund_account_id,
        )
    assert await ledger_state(raw, timebank.id) == before


# ------------------------------------------------------------------------------------------------
# Group sessions: a session's legs agree with it (count, total minutes, its host on the host's
# side, its date and category), are decided together, and never join or leave it afterwards.
# ------------------------------------------------------------------------------------------------


async def session_state(raw: asyncpg.Connection, timebank_id: int) -> dict[str, list[dict]]:
    """The ledger rows, the exchanges and the sessions of one timebank."""
    state = await ledger_state(raw, timebank_id)
    for table in ("exchanges", "exchange_groups"):
        rows = await raw.fetch(
            f"SELECT * FROM {table} WHERE timebank_id = $1 ORDER BY id",
            timebank_id,
        )
        state[table] = [dict(row) for row in rows]
    return state


async def session_people(participants, timebank, attendees: int = 3):
    """A host (an organisation) and its attendees, enrolled members."""
    host = await participants.enrol(timebank, "organisation", "Riverside Lunch Club")
    people = [
        await participants.enrol(timebank, "member", f"Attendee {n}") for n in range(attendees)
    ]
    return host, people


async def new_session(
    raw: asyncpg.Connection,
    timebank_id: int,
    host_id: int,
    legs: int,
    minutes: int,
    host_side: str = "giver",
) -> int:
    """A session row (on the timebank's first category, today), to be given its legs."""
    return await raw.fetchval(
        "INSERT INTO exchange_groups (timebank_id, host_id, host_side, legs, minutes,"
        " service_date, category_id, description, on_behalf)"
        " SELECT $1, $2, $3, $4, $5, current_date, min(id), 'Soup and a chat', false"
        " FROM categories"
        " WHERE timebank_id = $1 RETURNING id",
        timebank_id,
        host_id,
        host_side,
        legs,
        minutes,
    )


async def new_leg(
    raw: asyncpg.Connection, timebank_id: int, giver, receiver, minutes: int, group_id: int | None
) -> int:
    """An exchange awaiting approval with its reservation, as logging writes it, then made a
    leg of ``group_id`` (if any) by UPDATE in the same transaction. Run inside a transaction."""
    pending_id = await raw.fetchval(
        "SELECT (r.pending).id FROM ledger_reserve($1, $2, $3, $4, 'exchange', NULL, NULL,"
        " NULL, NULL) r",
        timebank_id,
        receiver.account_id,
        giver.account_id,
        minutes,
    )
    exchange_id = await raw.fetchval(
        "INSERT INTO exchanges (timebank_id, giver_id, receiver_id, minutes, service_date,"
        " category_id, state, logged_for, pending_transfer_id)"
        " SELECT $1, $2, $3, $4, current_date, min(id), 'awaiting_approval', 'giver', $5"
        " FROM categories WHERE timebank_id = $1 RETURNING id",
        timebank_id,
        giver.id,
        receiver.id,
        minutes,
        pending_id,
    )
    if group_id is not None:
        await raw.execute("UPDATE exchanges SET group_id = $2 WHERE id = $1", exchange_id, group_id)
    return exchange_id


async def logged_session(
    raw: asyncpg.Connection, timebank_id: int, host, people, minutes: list[int]
) -> tuple[int, list[int]]:
    """An honest session given by ``host``, one leg per person: (session id, leg ids)."""
    async with raw.transaction():
        group_id = await new_session(raw, timebank_id, host.id, len(minutes), sum(minutes))
        legs = [
            await new_leg(raw, timebank_id, host, person, m, group_id)
            for person, m in zip(people, minutes, strict=True)
        ]
    return group_id, legs


async def decide(raw: asyncpg.Connection, timebank_id: int, leg_id: int, action: str) -> None:
    """Approve (post its reservation) or reject (void it) one leg, as a decision writes it."""
    pending_id = await raw.fetchval(
        "SELECT pending_transfer_id FROM exchanges WHERE id = $1", leg_id
    )
    if action == "approve":
        transfer_id = await raw.fetchval(
            "SELECT (r.transfer).id FROM ledger_post_pending($1, $2, NULL, NULL, NULL) r",
            timebank_id,
            pending_id,
        )
        await raw.execute(
            "UPDATE exchanges SET state = 'approved', transfer_id = $2 WHERE id = $1",
            leg_id,
            transfer_id,
        )
    else:
        await raw.fetchrow(
            "SELECT * FROM ledger_void_pending($1, $2, NULL, NULL, NULL)", timebank_id, pending_id
        )
        await raw.execute("UPDATE exchanges SET state = 'rejected' WHERE id = $1", leg_id)


@pytest.mark.parametrize("host_side", ["giver", "receiver"])
async def test_group_session_logged_and_decided_together_is_accepted(
    raw, engine, participants, timebank, host_side
):
    """Control for the attacks below: an honest session commits, and so do its legs decided
    all at once, whichever side its host is on."""
    host, people = await session_people(participants, timebank)
    async with raw.transaction():
        group_id = await new_session(raw, timebank.id, host.id, 3, 150, host_side)
        legs = []
        for person, minutes in zip(people, (30, 60, 60), strict=True):
            giver, receiver = (host, person) if host_side == "giver" else (person, host)
            legs.append(await new_leg(raw, timebank.id, giver, receiver, minutes, group_id))
    async with raw.transaction():
        for leg in legs:
            await decide(raw, timebank.id, leg, "approve")
    states = await raw.fetch(
        "SELECT state, group_id FROM exchanges WHERE id = ANY($1::bigint[])", legs
    )
    assert {(r["state"], r["group_id"]) for r in states} == {("approved", group_id)}
    host_balance = await raw.fetchval("SELECT balance FROM accounts WHERE id = $1", host.account_id)
    assert host_balance == (150 if host_side == "giver" else -150)
    async with engine.connect() as conn:
        report = await audit(conn, timebank.slug)
    assert report.ok, report.findings


@pytest.mark.parametrize(
    ("legs", "minutes", "leg_minutes"),
    [
        (3, 150, [30, 60, 61]),  # the legs add up to more than the session
        (3, 150, [30, 60, 59]),  # to less
        (3, 150, [90, 60]),  # a leg short
        (2, 150, [30, 60, 60]),  # a leg too many
    ],
)
async def test_group_session_whose_legs_do_not_add_up_is_refused_at_commit(
    raw, participants, timebank, legs, minutes, leg_minutes
):
    host, people = await session_people(participants, timebank)
    before = await session_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="does not balance"):
        async with raw.transaction():
            group_id = await new_session(raw, timebank.id, host.id, legs, minutes)
            for person, m in zip(people, leg_minutes, strict=False):
                await new_leg(raw, timebank.id, host, person, m, group_id)
    assert await session_state(raw, timebank.id) == before


async def test_group_session_with_no_legs_is_refused_at_commit(raw, participants, timebank):
    host, _ = await session_people(participants, timebank)
    before = await session_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="0 legs of 0 minutes"):
        async with raw.transaction():
            await new_session(raw, timebank.id, host.id, 2, 60)
    assert await session_state(raw, timebank.id) == before


@pytest.mark.parametrize("stray", ["another host", "host on the wrong side", "other date"])
async def test_group_session_leg_not_from_its_host_is_refused_at_commit(
    raw, participants, timebank, stray
):
    host, (ann, ben, cy) = await session_people(participants, timebank)
    before = await session_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="between its host and one attendee"):
        async with raw.transaction():
            group_id = await new_session(raw, timebank.id, host.id, 2, 90)
            await new_leg(raw, timebank.id, host, ann, 30, group_id)
            if stray == "another host":  # Cy gives to Ben, inside the club's session
                await new_leg(raw, timebank.id, cy, ben, 60, group_id)
            elif stray == "host on the wrong side":  # Ben gives to the host
                await new_leg(raw, timebank.id, ben, host, 60, group_id)
            else:
                leg = await new_leg(raw, timebank.id, host, ben, 60, None)
                await raw.execute(
                    "UPDATE exchanges SET service_date = service_date - 1, group_id = $2"
                    " WHERE id = $1",
                    leg,
                    group_id,
                )
    assert await session_state(raw, timebank.id) == before


@pytest.mark.parametrize("other", ["still awaiting", "rejected"])
async def test_group_session_legs_decided_apart_are_refused_at_commit(
    raw, participants, timebank, other
):
    host, people = await session_people(participants, timebank)
    _, legs = await logged_session(raw, timebank.id, host, people, [30, 45, 60])
    before = await session_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="decided together"):
        async with raw.transaction():
            await decide(raw, timebank.id, legs[0], "approve")
            await decide(raw, timebank.id, legs[1], "approve")
            if other == "rejected":
                await decide(raw, timebank.id, legs[2], "reject")
    assert await session_state(raw, timebank.id) == before


async def test_exchange_logged_earlier_cannot_join_a_session(raw, participants, timebank):
    host, (ann, ben, _) = await session_people(participants, timebank)
    group_id, _ = await logged_session(raw, timebank.id, host, [ann], [30])
    async with raw.transaction():
        earlier = await new_leg(raw, timebank.id, host, ben, 45, None)
    before = await session_state(raw, timebank.id)
    # Into a new session of its figures, or into the existing one (its figures then wrong).
    for new in (True, False):
        with refused(sqlstate=INVARIANT, match="joins it when logged"):
            async with raw.transaction():
                target = await new_session(raw, timebank.id, host.id, 1, 45) if new else group_id
                await raw.execute(
                    "UPDATE exchanges SET group_id = $2 WHERE id = $1", earlier, target
                )
    assert await session_state(raw, timebank.id) == before


async def test_exchange_logged_earlier_cannot_join_a_session_after_being_touched(
    raw, participants, timebank
):
    """Touching the exchange first (any update writes a new row version in this
    transaction) does not make it one logged now."""
    host, (ann, _, _) = await session_people(participants, timebank)
    async with raw.transaction():
        earlier = await new_leg(raw, timebank.id, host, ann, 45, None)
    before = await session_state(raw, timebank.id)
    for touch in (
        "UPDATE exchanges SET description = description WHERE id = $1",
        "UPDATE exchanges SET created_at = now() WHERE id = $1",
    ):
        with refused(sqlstate=INVARIANT):
            async with raw.transaction():
                group_id = await new_session(raw, timebank.id, host.id, 1, 45)
                await raw.execute(touch, earlier)
                await raw.execute(
                    "UPDATE exchanges SET group_id = $2 WHERE id = $1", earlier, group_id
                )
    assert await session_state(raw, timebank.id) == before


async def test_leg_cannot_leave_its_session_or_move_to_another(raw, participants, timebank):
    host, people = await session_people(participants, timebank)
    _, legs = await logged_session(raw, timebank.id, host, people[:2], [30, 30])
    other, _ = await logged_session(raw, timebank.id, host, people[2:], [30])
    before = await session_state(raw, timebank.id)
    for target in (None, other):
        with refused(sqlstate=INVARIANT, match="joins it when logged, and stays"):
            await raw.execute("UPDATE exchanges SET group_id = $2 WHERE id = $1", legs[0], target)
    # Not even in the transaction that logs it.
    with refused(sqlstate=INVARIANT, match="joins it when logged, and stays"):
        async with raw.transaction():
            group_id = await new_session(raw, timebank.id, host.id, 1, 30)
            leg = await new_leg(raw, timebank.id, host, people[0], 30, group_id)
            await raw.execute("UPDATE exchanges SET group_id = NULL WHERE id = $1", leg)
    assert await session_state(raw, timebank.id) == before


@pytest.mark.parametrize(
    "change",
    [
        "giver_id = receiver_id, receiver_id = giver_id",  # the host swaps sides
        "service_date = service_date + 1",
        "minutes = minutes + 1",
    ],
)
async def test_leg_cannot_change_what_makes_it_one_of_its_session(
    raw, participants, timebank, change
):
    host, people = await session_people(participants, timebank)
    _, legs = await logged_session(raw, timebank.id, host, people, [30, 45, 60])
    before = await session_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT):
        async with raw.transaction():
            await raw.execute(f"UPDATE exchanges SET {change} WHERE id = $1", legs[1])
    assert await session_state(raw, timebank.id) == before


async def test_leg_cannot_be_deleted(raw, participants, timebank):
    host, people = await session_people(participants, timebank)
    _, legs = await logged_session(raw, timebank.id, host, people, [30, 45, 60])
    pending_id = await raw.fetchval(
        "SELECT pending_transfer_id FROM exchanges WHERE id = $1", legs[2]
    )
    before = await session_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT):
        async with raw.transaction():
            await raw.fetchrow(
                "SELECT * FROM ledger_void_pending($1, $2, NULL, NULL, NULL)",
                timebank.id,
                pending_id,
            )
            await raw.execute("DELETE FROM exchanges WHERE id = $1", legs[2])
    assert await session_state(raw, timebank.id) == before


@pytest.mark.parametrize(
    "change",
    [
        "minutes = minutes + 60",
        "legs = legs - 1",
        "host_side = 'receiver'",
        "service_date = service_date - 7",
        "description = 'rewritten'",
        "created_at = created_at - interval '1 day'",
    ],
)
async def test_session_figures_cannot_be_updated(raw, participants, timebank, change):
    host, people = await session_people(participants, timebank)
    group_id, _ = await logged_session(raw, timebank.id, host, people, [30, 45, 60])
    before = await session_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="append-only"):
        await raw.execute(f"UPDATE exchange_groups SET {change} WHERE id = $1", group_id)
    assert await session_state(raw, timebank.id) == before


async def test_session_cannot_be_deleted_but_erasure_forgets_its_words(raw, participants, timebank):
    host, people = await session_people(participants, timebank)
    group_id, _ = await logged_session(raw, timebank.id, host, people, [30, 45, 60])
    before = await session_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="append-only"):
        await raw.execute("DELETE FROM exchange_groups WHERE id = $1", group_id)
    with refused(sqlstate=INVARIANT, match="append-only"):
        await raw.execute("TRUNCATE exchange_groups CASCADE")
    assert await session_state(raw, timebank.id) == before
    await raw.execute(
        "UPDATE exchange_groups SET description = NULL, logged_by_user_id = NULL WHERE id = $1",
        group_id,
    )
    assert (
        await raw.fetchval("SELECT description FROM exchange_groups WHERE id = $1", group_id)
        is None
    )


async def test_session_cannot_take_the_id_of_an_exchange(raw, participants, timebank):
    """Sessions share the exchanges' ids: one id never names both."""
    host, (ann, ben, _) = await session_people(participants, timebank)
    async with raw.transaction():
        exchange_id = await new_leg(raw, timebank.id, host, ann, 45, None)
    before = await session_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT):
        async with raw.transaction():
            await raw.execute(
                "INSERT INTO exchange_groups (id, timebank_id, host_id, host_side, legs, minutes,"
                " service_date, category_id, on_behalf)"
                " SELECT $2, $1, $3, 'giver', 1, 30, current_date, min(id), false"
                " FROM categories WHERE timebank_id = $1",
                timebank.id,
                exchange_id,
                host.id,
            )
            await new_leg(raw, timebank.id, host, ben, 30, exchange_id)
    assert await session_state(raw, timebank.id) == before


async def test_exchange_cannot_take_the_id_of_a_session(raw, participants, timebank):
    host, (ann, _, _) = await session_people(participants, timebank)
    group_id, _ = await logged_session(raw, timebank.id, host, [ann], [30])
    before = await session_state(raw, timebank.id)
    with refused(sqlstate=INVARIANT, match="the id of a group session"):
        await raw.execute(
            "INSERT INTO exchanges (id, timebank_id, giver_id, receiver_id, minutes,"
            " service_date, category_id, logged_for) OVERRIDING SYSTEM VALUE"
            " SELECT $2, $1, $3, $4, 30, current_date, min(id), 'giver'"
            " FROM categories WHERE timebank_id = $1",
            timebank.id,
            group_id,
            host.id,
            ann.id,
        )
    assert await session_state(raw, timebank.id) == before
