"""Aggregates for the reports, kept up to date by PostgreSQL as exchanges start and stop
counting: volumes by day, people by day as bitmaps of participant ordinals, first days.

Revision ID: 0004_report_rollups
Revises: 0003_report_facts
Create Date: 2026-11-26
"""

from timebank.db.migrations import run_sql_file

revision = "0004_report_rollups"
down_revision = "0003_report_facts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0004_report_rollups.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
