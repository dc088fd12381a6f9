"""Imported exchanges carry an import key, unique per timebank, so that importing a file
again skips the rows already there.

Revision ID: 0008_imports
Revises: 0007_contact_details
Create Date: 2026-12-03
"""

from timebank.db.migrations import run_sql_file

revision = "0008_imports"
down_revision = "0007_contact_details"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0008_imports.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
