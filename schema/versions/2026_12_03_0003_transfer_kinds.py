"""Gifts, grants from the community pot, opening balances and leaving: the transfer kinds
gift, opening and leaving, their records beside the ledger, and closed accounts.

Revision ID: 0003_transfer_kinds
Revises: 0002_published_values
Create Date: 2026-12-03
"""

from timebank.db.migrations import run_function, run_sql_file

revision = "0003_transfer_kinds"
down_revision = "0002_published_values"
branch_labels = None
depends_on = None

FUNCTIONS = (
    "ledger_open_account",
    "ledger_gift",
    "ledger_set_opening",
    "ledger_leave",
    "ledger_records_append_only",
    "accounts_stay_closed",
    "postings_check_leg",  # no leg on a closed account, whatever the net of a batch
)


def upgrade() -> None:
    run_sql_file("0003_transfer_kinds.sql")
    for name in FUNCTIONS:
        run_function(name)


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
