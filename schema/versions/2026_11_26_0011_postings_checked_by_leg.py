"""A posting's transfer and account are checked by its leg trigger, not by two foreign keys too.

Revision ID: 0011_postings_checked_by_leg
Revises: 0010_fewer_nested_calls
Create Date: 2026-11-26
"""

from timebank.db.migrations import run_sql_file

revision = "0011_postings_checked_by_leg"
down_revision = "0010_fewer_nested_calls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0011_postings_checked_by_leg.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
