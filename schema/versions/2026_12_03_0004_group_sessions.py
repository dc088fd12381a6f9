"""Group sessions (one record of many exchanges, decided together) and how a timebank shows a
member their balance.

Revision ID: 0004_group_sessions
Revises: 0003_transfer_kinds
Create Date: 2026-12-03
"""

from timebank.db.migrations import run_function, run_sql_file

revision = "0004_group_sessions"
down_revision = "0003_transfer_kinds"
branch_labels = None
depends_on = None

FUNCTIONS = ("exchange_groups_check", "exchanges_group_stays")


def upgrade() -> None:
    run_sql_file("0004_group_sessions.sql")
    for name in FUNCTIONS:
        run_function(name)


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
