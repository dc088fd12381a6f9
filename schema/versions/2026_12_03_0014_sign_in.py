"""Sign-in delays instead of lockouts, keyed and pruned counters, expiring tokens, password resets.

Revision ID: 0014_sign_in
Revises: 0013_corrections_and_limits
Create Date: 2026-12-03
"""

from timebank.db.migrations import run_sql_file

revision = "0014_sign_in"
down_revision = "0013_corrections_and_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0014_sign_in.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
