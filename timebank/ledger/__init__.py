"""The double-entry ledger of hours: accounts, reservations, transfers, postings, audit."""

from timebank.ledger.schemas import (
    AccountBalance,
    IdempotencyKey,
    PendingResult,
    PostResult,
    StatementLine,
    StatementPage,
    TransferRecord,
)
from timebank.ledger.service import Ledger

__all__ = [
    "AccountBalance",
    "IdempotencyKey",
    "Ledger",
    "PendingResult",
    "PostResult",
    "StatementLine",
    "StatementPage",
    "TransferRecord",
]
