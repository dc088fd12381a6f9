"""The double-entry ledger of hours: accounts, reservations, transfers, postings, audit."""

from timebank.ledger.schemas import (
    AccountBalance,
    BatchResult,
    DepartureRecord,
    GiftRecord,
    IdempotencyKey,
    OpeningRecord,
    PendingResult,
    PostResult,
    PotWrite,
    StatementLine,
    StatementPage,
    TransferRecord,
    TransferRequest,
)
from timebank.ledger.service import Ledger

__all__ = [
    "AccountBalance",
    "BatchResult",
    "DepartureRecord",
    "GiftRecord",
    "IdempotencyKey",
    "Ledger",
    "OpeningRecord",
    "PendingResult",
    "PostResult",
    "PotWrite",
    "StatementLine",
    "StatementPage",
    "TransferRecord",
    "TransferRequest",
]
