"""The contribution report counts gifts, grants from the pot and group sessions: indexes for
reading them by period, and funder publications recording their cells.

Revision ID: 0005_report_kinds
Revises: 0004_group_sessions
Create Date: 2026-12-03
"""

from timebank.db.migrations import run_sql_file

revision = "0005_report_kinds"
down_revision = "0004_group_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0005_report_kinds.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
