"""What an archive holds: one CSV file per table, in the order a restore writes them (every row
after the rows it names), each with the columns of ``timebank.db.tables`` less those that name a
user; and how a value is written into a cell and read back.

Cells. A header row names the columns. An empty cell is NULL. Numbers, dates (ISO 8601),
timestamps (ISO 8601 with their offset, to the microsecond), booleans (``true``/``false``) and
bytes (hexadecimal: an exchange's import key) are written as they are: a spreadsheet reads a
number as a number, a minus sign included. A
text cell that is empty, or begins with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return or
a single quote, is written with one single quote in front: a spreadsheet then shows it as text
instead of running it as a formula, and a restore strips exactly that one quote, so every
value comes back as it was (``''`` is the empty string, ``'=1+1`` the text ``=1+1``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    SmallInteger,
    Table,
    Text,
    select,
)

from timebank.db import tables
from timebank.db.compose import arg, compiled_sql
from timebank.ledger.restore import LEDGER_TABLES

# Columns that name a user of the instance the archive was made on: users are not in an
# archive (no emails of accounts, no password hashes, no tokens), so these are left out and
# come back null; a restored participant has no user until a coordinator invites them again.
USER_COLUMNS = frozenset(
    {
        "user_id",
        "logged_by_user_id",
        "actor_user_id",
        "changed_by_user_id",
        "created_by_user_id",
        "set_by_user_id",
        "recorded_by_user_id",
    }
)

# Text that a spreadsheet would read as a formula (or that starts with the quote we add).
_RISKY_START = ("=", "+", "-", "@", "\t", "\r", "'")


@dataclass(frozen=True)
class ArchivedTable:
    """One file of an archive: the table it restores into, its columns, and how a restore
    reads each cell back."""

    file: str
    table: Table
    columns: tuple[str, ...]
    # Rows of the timebank, by primary key, from a server-side cursor: $1 is the timebank's id.
    select_sql: str

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def ledger(self) -> bool:
        """Whether the rows are the ledger's, restored through its door."""
        return self.name in LEDGER_TABLES

    def decoders(self) -> list[Callable[[str], Any]]:
        return [_decoder(self.table.c[name].type) for name in self.columns]


def _archived(file: str, table: Table) -> ArchivedTable:
    columns = tuple(c.name for c in table.columns if c.name not in USER_COLUMNS)
    scope = table.c.id if table is tables.timebanks else table.c.timebank_id
    order = list(table.primary_key.columns)
    statement = select(*(table.c[name] for name in columns)).where(scope == arg(1)).order_by(*order)
    return ArchivedTable(file, table, columns, compiled_sql(statement))


# In the order a restore writes them.
ARCHIVED: tuple[ArchivedTable, ...] = (
    _archived("timebank.csv", tables.timebanks),  # the timebank and its policy
    _archived("categories.csv", tables.categories),
    _archived("participants.csv", tables.participants),
    _archived("accounts.csv", tables.accounts),
    _archived("pending_transfers.csv", tables.pending_transfers),
    _archived("transfers.csv", tables.transfers),
    _archived("postings.csv", tables.postings),
    _archived("account_limit_changes.csv", tables.account_limit_changes),
    _archived("exchange_groups.csv", tables.exchange_groups),
    _archived("exchanges.csv", tables.exchanges),
    _archived("decisions.csv", tables.exchange_decisions),
    _archived("gifts.csv", tables.gifts),
    _archived("opening_balances.csv", tables.opening_balances),
    _archived("departures.csv", tables.departures),
    _archived("published_cells.csv", tables.published_cells),
)

# Every other table, and why it is not in an archive.
NOT_ARCHIVED: dict[str, str] = {
    "users": "users sign in to an instance; they are invited again",
    "api_tokens": "secrets of users",
    "password_resets": "secrets of users",
    "sign_in_counters": "the instance's own record of failed sign-ins",
    "sign_in_key": "the instance's own key",
    "timebank_roles": "roles are held by users",
    "role_changes": "the record of users' roles",
    "invitations": "hashes of tokens sent to users; people are invited again",
    "idempotency_keys": "answers to retries by users, only useful while a request is retried",
    "report_days": "derived: built again from the exchanges",
    "report_day_people": "derived: built again from the exchanges",
    "report_month_people": "derived: built again from the exchanges",
    "report_pair_months": "derived: built again from the exchanges",
    "report_tie_steps": "derived: built again from the exchanges",
    "report_firsts": "derived: built again from the exchanges",
    "report_queue": "derived: the restore queues every exchange again",
}

MANIFEST = "manifest.json"
FORMAT = "timebank-archive"
FORMAT_VERSION = 1


def cell(value: Any) -> str:
    """A value as its CSV cell (see the module's docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    text = str(value)
    if text == "" or text.startswith(_RISKY_START):
        return "'" + text
    return text


def _text(found: str) -> str:
    return found[1:] if found.startswith("'") else found


def _boolean(found: str) -> bool:
    if found not in ("true", "false"):
        raise ValueError(f"{found!r} is not true or false")
    return found == "true"


def _decoder(column_type: Any) -> Callable[[str], Any]:
    """How a restore reads a cell of a column of ``column_type`` (an empty cell is null)."""
    if isinstance(column_type, BigInteger | Integer | SmallInteger):
        parse: Callable[[str], Any] = int
    elif isinstance(column_type, Boolean):
        parse = _boolean
    elif isinstance(column_type, DateTime):
        parse = datetime.fromisoformat
    elif isinstance(column_type, Date):
        parse = date.fromisoformat
    elif isinstance(column_type, Text):
        parse = _text
    elif isinstance(column_type, LargeBinary):
        parse = bytes.fromhex
    else:  # pragma: no cover - every archived column is one of the above
        raise TypeError(f"no cell format for {column_type!r}")

    def decode(found: str) -> Any:
        return None if found == "" else parse(found)

    return decode
