"""Two-way ties from an aggregate: months each pair exchanged in, per direction and year.

Revision ID: 0005_report_pairs
Revises: 0004_report_rollups
Create Date: 2026-11-26
"""

from timebank.db.migrations import run_sql_file

revision = "0005_report_pairs"
down_revision = "0004_report_rollups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0005_report_pairs.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
