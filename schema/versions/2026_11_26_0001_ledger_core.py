"""Ledger core: timebanks, participants, accounts, reservations, transfers, postings,
idempotency keys, and the triggers and functions that enforce invariants I1-I8.

Revision ID: 0001_ledger_core
Revises:
Create Date: 2026-11-26
"""

from timebank.db.migrations import run_sql_file

revision = "0001_ledger_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0001_ledger_tables.sql")
    run_sql_file("0001_ledger_rules.sql")


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only; restore from a backup instead")
