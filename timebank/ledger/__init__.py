"""The double-entry ledger of hours: accounts, reservations, transfers, postings, audit."""

from timebank.ledger.schemas import (
    AccountBalance,
    BatchResult,
    IdempotencyKey,
    PendingResult,
    PostResult,
    StatementLine,
    StatementPage,
    TransferRecord,
    TransferRequest,
)
from timebank.ledger.service import Ledger

__all__ = [
    "AccountBalance",
    "BatchResult",
    "IdempotencyKey",
    "Ledger",
    "PendingResult",
    "PostResult",
    "StatementLine",
    "StatementPage",
    "TransferRecord",
    "TransferRequest",
]
