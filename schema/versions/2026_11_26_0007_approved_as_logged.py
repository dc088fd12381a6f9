"""An exchange approved as it is logged is posted by the statement that logs it.

Revision ID: 0007_approved_as_logged
Revises: 0006_report_months
Create Date: 2026-11-26
"""

from timebank.db.migrations import run_sql_file

revision = "0007_approved_as_logged"
down_revision = "0006_report_months"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0007_approved_as_logged.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
