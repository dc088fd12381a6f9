"""Reversals exempt from limits; account limits changed and recorded.

Revision ID: 0013_corrections_and_limits
Revises: 0012_invitations_and_roles
Create Date: 2026-12-03
"""

from timebank.db.migrations import run_sql_file

revision = "0013_corrections_and_limits"
down_revision = "0012_invitations_and_roles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0013_corrections_and_limits.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
