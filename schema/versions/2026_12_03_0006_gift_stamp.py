"""A gift is stamped when it is written (clock_timestamp()), as an approval is, so that one
whose transaction waited cannot land in a moment a report has already counted.

Revision ID: 0006_gift_stamp
Revises: 0005_report_kinds
Create Date: 2026-12-03
"""

from timebank.db.migrations import run_function

revision = "0006_gift_stamp"
down_revision = "0005_report_kinds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_function("ledger_gift")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
