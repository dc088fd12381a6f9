"""What the ledger service takes and returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Literal, TypedDict, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from timebank.fields import WholeNumber
from timebank.policy import MAX_POLICY_MINUTES  # bounds an account's limits as a policy's

TransferKind = Literal["exchange", "reversal", "grant", "adjustment", "gift", "opening", "leaving"]
DirectKind = Literal["exchange", "grant", "adjustment"]

R = TypeVar("R")


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's key for one request: ``author`` (who sent it) and the ``key`` they chose."""

    author: str
    key: str


class StatementAsk(TypedDict, total=False):
    """Which page of an account's statement: postings before ``before_version`` (newest when
    None), ``limit`` of them (1 to 500, 50 by default)."""

    before_version: int | None
    limit: int


@dataclass(frozen=True)
class TransferRequest:
    """One transfer of a batch: ``minutes`` from the debit to the credit account."""

    debit_account_id: int
    credit_account_id: int
    minutes: int
    memo: str | None = None


@dataclass(frozen=True)
class TransferRecord:
    id: int
    timebank_id: int
    debit_account_id: int
    credit_account_id: int
    minutes: int
    kind: str
    pending_transfer_id: int | None
    reverses_transfer_id: int | None
    memo: str | None
    created_at: datetime


@dataclass(frozen=True)
class PostResult:
    transfer: TransferRecord
    replayed: bool


@dataclass(frozen=True)
class BatchResult:
    transfers: list[TransferRecord]
    replayed: bool


@dataclass(frozen=True)
class PendingRecord:
    id: int
    timebank_id: int
    debit_account_id: int
    credit_account_id: int
    minutes: int
    kind: str
    state: str
    memo: str | None
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class PendingResult:
    pending: PendingRecord
    replayed: bool


@dataclass(frozen=True)
class GiftRecord:
    """A member's gift (``to_participant_id`` None: to the community pot) or a coordinator's
    grant from the pot (``kind`` "grant", ``from_participant_id`` None), with its note."""

    id: int
    timebank_id: int
    kind: str
    from_participant_id: int | None
    to_participant_id: int | None
    minutes: int
    note: str | None
    transfer_id: int
    created_by_user_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class OpeningRecord:
    """An account's opening balance against the pot (no transfer when it is zero)."""

    account_id: int
    timebank_id: int
    minutes: int
    transfer_id: int | None
    set_by_user_id: int | None
    set_at: datetime


@dataclass(frozen=True)
class DepartureRecord:
    """A participant's leaving: the balance their account held when it closed and where it
    went (``balance_to_participant_id`` None: the pot), by which transfer (None for zero)."""

    account_id: int
    timebank_id: int
    participant_id: int
    balance_to_participant_id: int | None
    balance_minutes: int
    transfer_id: int | None
    recorded_by_user_id: int | None
    left_at: datetime


@dataclass(frozen=True)
class PotWrite(Generic[R]):
    """What a gift, grant, opening balance or leaving wrote: its record beside the ledger, the
    transfer that moved the minutes (None when none moved: a balance of zero), and whether it
    answered as a replay."""

    record: R
    transfer: TransferRecord | None
    replayed: bool


@dataclass(frozen=True)
class LockedAccount:
    """An account as a write of many legs reads it under lock: its figures, and whether it
    is closed (its participant left)."""

    account_id: int
    balance: int
    pending_in: int
    pending_out: int
    floor: int | None
    ceiling: int | None
    closed: bool

    def crossed(self, minutes_in: int, minutes_out: int) -> str | None:
        """Which limit ``minutes_in`` more held in and ``minutes_out`` more held out would
        cross ('floor' or 'ceiling'), or None. Only the way it moves counts: an account a
        reversal left outside its limits may still move back towards them."""
        floor, ceiling = self.floor, self.ceiling
        if (
            minutes_out
            and floor is not None
            and self.balance - self.pending_out - minutes_out < floor
        ):
            return "floor"
        if (
            minutes_in
            and ceiling is not None
            and self.balance + self.pending_in + minutes_in > ceiling
        ):
            return "ceiling"
        return None


@dataclass(frozen=True)
class AccountBalance:
    account_id: int
    balance_minutes: int
    pending_in_minutes: int
    pending_out_minutes: int
    floor_minutes: int | None
    ceiling_minutes: int | None
    version: int
    flagged_by_reversal_id: int | None = None

    @property
    def available_minutes(self) -> int | None:
        """Minutes that can still be spent before the floor, pending spending counted."""
        if self.floor_minutes is None:
            return None
        return self.balance_minutes - self.pending_out_minutes - self.floor_minutes


@dataclass(frozen=True)
class StatementLine:
    account_version: int
    transfer_id: int
    kind: str
    minutes: int
    balance_after: int
    counterparty_account_id: int
    memo: str | None
    created_at: datetime


@dataclass(frozen=True)
class StatementPage:
    lines: list[StatementLine]
    next_before_version: int | None


# Responses of the balance, statement and audit routes.


class BalancePublic(BaseModel):
    participant_id: int
    account_id: int
    display: Literal["balance"] = "balance"
    balance_minutes: int
    pending_in_minutes: int
    pending_out_minutes: int
    floor_minutes: int
    ceiling_minutes: int
    available_minutes: int = Field(description="minutes that can be spent before the floor")
    flagged_by_reversal_id: int | None = Field(
        default=None,
        description="set while a reversal has left the account outside its limits: the"
        " reversal's transfer; the account then takes nothing that moves it further out",
    )


class LimitsUpdate(BaseModel):
    """New limits for one account, and why: they must hold its balance and reservations."""

    model_config = ConfigDict(extra="forbid")

    floor_minutes: WholeNumber = Field(le=0, ge=-MAX_POLICY_MINUTES, description="at most 0")
    ceiling_minutes: WholeNumber = Field(ge=0, le=MAX_POLICY_MINUTES, description="at least 0")
    reason: str = Field(min_length=1, max_length=500, description="why (kept on the record)")

    @field_validator("reason")
    @classmethod
    def _reason_present(cls, value: str) -> str:
        value = value.strip()
        if not value or "\x00" in value:
            raise ValueError("say why, in plain text")
        return value


class LimitChangePublic(BaseModel):
    """One change of an account's limits, as recorded: who, when, from, to, why."""

    id: int
    participant_id: int
    account_id: int
    changed_by_user_id: int | None
    changed_at: datetime
    floor_before: int
    ceiling_before: int
    floor_after: int
    ceiling_after: int
    reason: str | None = Field(description="why (null once erased)")


class FlaggedAccountPublic(BaseModel):
    """An account a reversal has left outside its limits, for a coordinator to settle."""

    participant_id: int
    account_id: int
    balance_minutes: int
    pending_in_minutes: int
    pending_out_minutes: int
    floor_minutes: int
    ceiling_minutes: int
    flagged_by_reversal_id: int


class StatementLinePublic(BaseModel):
    account_version: int
    transfer_id: int
    kind: str
    minutes: int
    balance_after: int | None = Field(
        description="the running balance after this line (null for a member whose timebank"
        " shows hours given and received instead of a balance)"
    )
    counterparty_account_id: int
    memo: str | None
    created_at: datetime


class StatementPublic(BaseModel):
    """Newest first; pass ``next_before_version`` as ``before_version`` for the next page."""

    participant_id: int
    account_id: int
    lines: list[StatementLinePublic]
    next_before_version: int | None


class FindingPublic(BaseModel):
    check: str
    timebank: str
    subject: str
    detail: str


class AuditPublic(BaseModel):
    """The ledger audit of one timebank: every figure re-derived from the postings."""

    ok: bool
    timebanks: int
    accounts: int
    transfers: int
    postings: int
    findings: list[FindingPublic]
