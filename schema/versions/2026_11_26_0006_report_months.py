"""Month-sized report aggregates: people per month as bitmaps, ties as step counts.

Revision ID: 0006_report_months
Revises: 0005_report_pairs
Create Date: 2026-11-26
"""

from timebank.db.migrations import run_sql_file

revision = "0006_report_months"
down_revision = "0005_report_pairs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0006_report_months.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
