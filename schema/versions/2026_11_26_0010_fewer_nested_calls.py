"""Posting through the ledger's functions makes fewer nested calls: same rows, locks and errors.

Revision ID: 0010_fewer_nested_calls
Revises: 0009_report_queue
Create Date: 2026-11-26
"""

from timebank.db.migrations import run_sql_file

revision = "0010_fewer_nested_calls"
down_revision = "0009_report_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0010_fewer_nested_calls.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
