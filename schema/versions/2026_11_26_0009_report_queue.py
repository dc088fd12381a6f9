"""Report aggregates are brought up to date in batches, from a queue that approvals fill.

Revision ID: 0009_report_queue
Revises: 0008_log_in_one_statement
Create Date: 2026-11-26
"""

from timebank.db.migrations import run_sql_file

revision = "0009_report_queue"
down_revision = "0008_log_in_one_statement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0009_report_queue.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
