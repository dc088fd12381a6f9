"""Logging an exchange writes in one statement, which claims the idempotency key itself.

Revision ID: 0008_log_in_one_statement
Revises: 0007_approved_as_logged
Create Date: 2026-11-26
"""

from timebank.db.migrations import run_sql_file

revision = "0008_log_in_one_statement"
down_revision = "0007_approved_as_logged"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0008_log_in_one_statement.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
