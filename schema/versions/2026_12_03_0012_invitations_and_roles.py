"""Invitations a person accepts themselves; role changes recorded.

Revision ID: 0012_invitations_and_roles
Revises: 0011_postings_checked_by_leg
Create Date: 2026-12-03
"""

from timebank.db.migrations import run_sql_file

revision = "0012_invitations_and_roles"
down_revision = "0011_postings_checked_by_leg"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0012_invitations_and_roles.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
