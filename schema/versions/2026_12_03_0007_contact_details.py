"""How to reach a participant (email, phone, postal address, contact preference), their id in
the system a timebank moved from, and deactivation.

Revision ID: 0007_contact_details
Revises: 0006_gift_stamp
Create Date: 2026-12-03
"""

from timebank.db.migrations import run_sql_file

revision = "0007_contact_details"
down_revision = "0006_gift_stamp"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0007_contact_details.sql")


def downgrade() -> None:
    raise NotImplementedError("restore a backup instead")
