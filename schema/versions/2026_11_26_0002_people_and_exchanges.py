"""People, roles and sign-in (kept apart from the ledger), the exchange policy of a timebank,
exchanges and their decision history.

Revision ID: 0002_people_and_exchanges
Revises: 0001_ledger_core
Create Date: 2026-11-26
"""

from timebank.db.migrations import run_sql_file

revision = "0002_people_and_exchanges"
down_revision = "0001_ledger_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0002_people_and_exchanges.sql")


def downgrade() -> None:
    raise NotImplementedError("exchanges are part of the ledger's history; restore a backup")
