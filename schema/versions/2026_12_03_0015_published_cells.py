"""What funder publications have shown and withheld, so that withholding only grows.

Revision ID: 0015_published_cells
Revises: 0014_sign_in
Create Date: 2026-12-03
"""

from timebank.db.migrations import run_sql_file

revision = "0015_published_cells"
down_revision = "0014_sign_in"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0015_published_cells.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
