"""Published cells keep the value they were last shown with: a cell whose value has changed
since (a late approval, a late joiner) is no longer known to a funder at its new value.

Revision ID: 0002_published_values
Revises: 0001_baseline
Create Date: 2026-12-03
"""

from alembic import op

revision = "0002_published_values"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE published_cells ADD COLUMN shown_value bigint")
    op.execute(
        "COMMENT ON COLUMN published_cells.shown_value IS"
        " 'the value a publication last showed (null: withheld before it was ever shown)'"
    )


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
