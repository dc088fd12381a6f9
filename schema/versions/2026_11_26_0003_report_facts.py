"""When each exchange came to count and stopped counting, for reports "as of" a moment.

Revision ID: 0003_report_facts
Revises: 0002_people_and_exchanges
Create Date: 2026-11-26
"""

from timebank.db.migrations import run_sql_file

revision = "0003_report_facts"
down_revision = "0002_people_and_exchanges"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0003_report_facts.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
