"""Table models, one class per table created by the migrations in ``schema/``.

The migrations are the source of truth (constraints and triggers live there); these classes
let services read and write rows with SQLModel. They never cross the HTTP boundary.
"""

from sqlmodel import SQLModel

from timebank.db.models.ledger import (
    Account,
    Category,
    IdempotencyKey,
    Participant,
    PendingTransfer,
    Posting,
    Timebank,
    Transfer,
)

metadata = SQLModel.metadata

__all__ = [
    "Account",
    "Category",
    "IdempotencyKey",
    "Participant",
    "PendingTransfer",
    "Posting",
    "Timebank",
    "Transfer",
    "metadata",
]
