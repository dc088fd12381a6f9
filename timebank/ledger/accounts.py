"""What the ledger reads: an account's balance, its statement, the accounts a reversal left
outside their limits, and which account a participant holds. (Writes go through
``timebank.ledger.repository``.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from timebank.db.statements import Connection, fetch, fetch_one
from timebank.errors import NotFound
from timebank.ledger.schemas import AccountBalance, StatementLine

_BALANCE = (
    "SELECT id AS account_id, balance AS balance_minutes,"
    " pending_in AS pending_in_minutes, pending_out AS pending_out_minutes,"
    " floor AS floor_minutes, ceiling AS ceiling_minutes, version, flagged_by_reversal_id"
    " FROM accounts WHERE id = $1 AND timebank_id = $2"
)
_STATEMENT = (
    "SELECT p.account_version, p.transfer_id, t.kind, p.minutes, p.balance_after,"
    " CASE WHEN t.debit_account_id = p.account_id THEN t.credit_account_id"
    "      ELSE t.debit_account_id END AS counterparty_account_id,"
    " t.memo, t.created_at"
    " FROM postings p JOIN transfers t ON t.id = p.transfer_id"
    " WHERE p.account_id = $1 AND p.timebank_id = $2"
    "   AND ($3::bigint IS NULL OR p.account_version < $3::bigint)"
    " ORDER BY p.account_version DESC LIMIT $4"
)
_FLAGGED = (
    "SELECT participant_id, id AS account_id, balance AS balance_minutes,"
    " pending_in AS pending_in_minutes, pending_out AS pending_out_minutes,"
    " floor AS floor_minutes, ceiling AS ceiling_minutes, flagged_by_reversal_id"
    " FROM accounts WHERE timebank_id = $1 AND flagged_by_reversal_id IS NOT NULL"
    " ORDER BY flagged_by_reversal_id"
)
_ACCOUNT_OF = "SELECT id FROM accounts WHERE participant_id = $1 AND timebank_id = $2"
_DEACTIVATED = (
    "SELECT 1 FROM participants WHERE timebank_id = $1 AND id = $2 AND deactivated_at IS NOT NULL"
)
_POT_ACCOUNT = "SELECT id FROM accounts WHERE timebank_id = $1 AND system_role = 'community_fund'"
# The pot's postings, newest first, each with the participant on the other side and, for a gift
# or grant, its note (kept in gifts, beside the ledger).
_POT_MOVEMENTS = (
    "SELECT p.transfer_id, t.kind, abs(p.minutes) AS minutes,"
    " CASE WHEN p.minutes > 0 THEN 'in' ELSE 'out' END AS direction,"
    " other.participant_id, g.note, p.balance_after, p.account_version, t.created_at"
    " FROM postings p JOIN transfers t ON t.id = p.transfer_id"
    " JOIN accounts other ON other.id = CASE WHEN t.debit_account_id = p.account_id"
    "      THEN t.credit_account_id ELSE t.debit_account_id END"
    " LEFT JOIN gifts g ON g.transfer_id = t.id"
    " WHERE p.account_id = $1 AND p.timebank_id = $2"
    "   AND ($3::bigint IS NULL OR p.account_version < $3::bigint)"
    " ORDER BY p.account_version DESC LIMIT $4"
)
# Minutes of the exchanges an account gave (credited) and received (debited), those reversed
# left out: gifts, grants, opening balances and leaving are not exchanges.
_GIVEN_RECEIVED = (
    "SELECT coalesce(sum(p.minutes) FILTER (WHERE p.minutes > 0), 0) AS given_minutes,"
    " coalesce(-sum(p.minutes) FILTER (WHERE p.minutes < 0), 0) AS received_minutes"
    " FROM postings p JOIN transfers t ON t.id = p.transfer_id"
    " WHERE p.account_id = $1 AND p.timebank_id = $2 AND t.kind = 'exchange'"
    "   AND NOT EXISTS (SELECT FROM transfers r WHERE r.reverses_transfer_id = t.id)"
)
# Whether a participant's account has an opening balance and whether they have left.
_STANDING = (
    "SELECT a.id AS account_id, o.minutes AS opening_minutes, d.left_at,"
    " d.balance_to_participant_id AS left_balance_to, d.balance_minutes AS left_with_minutes"
    " FROM accounts a LEFT JOIN opening_balances o ON o.account_id = a.id"
    " LEFT JOIN departures d ON d.account_id = a.id"
    " WHERE a.participant_id = $1 AND a.timebank_id = $2"
)
_BALANCE_DISPLAY = "SELECT balance_display FROM timebanks WHERE id = $1"
_ACCOUNT_AND_DISPLAY = (
    "SELECT a.id, t.balance_display FROM accounts a JOIN timebanks t ON t.id = a.timebank_id"
    " WHERE a.participant_id = $1 AND a.timebank_id = $2"
)


async def get_balance(conn: Connection, timebank_id: int, account_id: int) -> AccountBalance:
    row = await fetch_one(conn, _BALANCE, account_id, timebank_id)
    if row is None:
        raise NotFound(f"account {account_id} not found in this timebank")
    return AccountBalance(**row)


async def statement_lines(
    conn: Connection,
    timebank_id: int,
    account_id: int,
    *,
    before_version: int | None,
    limit: int,
) -> list[StatementLine]:
    """Newest first; keyset pagination on the account's gapless version numbers."""
    rows = await fetch(conn, _STATEMENT, account_id, timebank_id, before_version, limit)
    return [StatementLine(**row) for row in rows]


async def flagged_accounts(conn: Connection, timebank_id: int) -> Sequence[Mapping[str, Any]]:
    """Accounts a reversal has left outside their limits, oldest flag first."""
    return await fetch(conn, _FLAGGED, timebank_id)


async def account_of(conn: Connection, timebank_id: int, participant_id: int) -> int:
    """The account participant ``participant_id`` holds in this timebank."""
    row = await fetch_one(conn, _ACCOUNT_OF, participant_id, timebank_id)
    if row is None:
        raise NotFound(f"participant {participant_id} not found in this timebank")
    return int(row["id"])


async def is_deactivated(conn: Connection, timebank_id: int, participant_id: int) -> bool:
    """Whether a coordinator has deactivated this participant (False for none such)."""
    return await fetch_one(conn, _DEACTIVATED, timebank_id, participant_id) is not None


async def pot_account(conn: Connection, timebank_id: int) -> int:
    """The account of the timebank's community pot (its community fund)."""
    row = await fetch_one(conn, _POT_ACCOUNT, timebank_id)
    if row is None:
        raise NotFound("this timebank has no community pot")
    return int(row["id"])


async def pot_movements(
    conn: Connection,
    timebank_id: int,
    account_id: int,
    *,
    before_version: int | None,
    limit: int,
) -> Sequence[Mapping[str, Any]]:
    """The pot's movements newest first (keyset on its version numbers): transfer, kind,
    minutes, direction in or out, the participant on the other side, a gift's note."""
    return await fetch(conn, _POT_MOVEMENTS, account_id, timebank_id, before_version, limit)


async def given_received(conn: Connection, timebank_id: int, account_id: int) -> tuple[int, int]:
    """Minutes of the exchanges the account gave and received, reversed ones left out."""
    row = await fetch_one(conn, _GIVEN_RECEIVED, account_id, timebank_id)
    assert row is not None, "an aggregate always answers one row"
    return int(row["given_minutes"]), int(row["received_minutes"])


async def balance_display(conn: Connection, timebank_id: int) -> str:
    """How the timebank shows a member their own balance: "balance" or "given_received"."""
    row = await fetch_one(conn, _BALANCE_DISPLAY, timebank_id)
    return str(row["balance_display"]) if row is not None else "balance"


async def standing(conn: Connection, timebank_id: int, participant_id: int) -> Mapping[str, Any]:
    """A participant's account: its opening balance (None if never set) and, once they have
    left, when, with what balance and to whom (None: the pot)."""
    row = await fetch_one(conn, _STANDING, participant_id, timebank_id)
    if row is None:
        raise NotFound(f"participant {participant_id} not found in this timebank")
    return row


async def account_and_display(
    conn: Connection, timebank_id: int, participant_id: int
) -> tuple[int, str]:
    """``account_of`` and the timebank's ``balance_display``, in one round trip."""
    row = await fetch_one(conn, _ACCOUNT_AND_DISPLAY, participant_id, timebank_id)
    if row is None:
        raise NotFound(f"participant {participant_id} not found in this timebank")
    return int(row["id"]), str(row["balance_display"])
