"""Timebanks, participants and the double-entry ledger (DESIGN.md §2)."""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def _id() -> int | None:
    return Field(default=None, primary_key=True, sa_type=BigInteger)


def _ref(target: str) -> int:
    return Field(foreign_key=target, sa_type=BigInteger)


def _created_at() -> datetime | None:
    return Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class Timebank(SQLModel, table=True):
    __tablename__ = "timebanks"

    id: int | None = _id()
    slug: str
    name: str
    default_floor_minutes: int = Field(default=-600, sa_type=BigInteger)
    default_ceiling_minutes: int = Field(default=6000, sa_type=BigInteger)
    max_exchange_minutes: int = Field(default=720, sa_type=BigInteger)
    welcome_grant_minutes: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime | None = _created_at()


class Participant(SQLModel, table=True):
    __tablename__ = "participants"

    id: int | None = _id()
    timebank_id: int = _ref("timebanks.id")
    kind: str
    display_name: str
    joined_on: date | None = Field(default=None)
    created_at: datetime | None = _created_at()


class Category(SQLModel, table=True):
    __tablename__ = "categories"

    id: int | None = _id()
    timebank_id: int = _ref("timebanks.id")
    slug: str
    name: str


class Account(SQLModel, table=True):
    __tablename__ = "accounts"

    id: int | None = _id()
    timebank_id: int = _ref("timebanks.id")
    participant_id: int | None = Field(default=None, sa_type=BigInteger)
    system_role: str | None = None
    balance: int = Field(default=0, sa_type=BigInteger)
    pending_in: int = Field(default=0, sa_type=BigInteger)
    pending_out: int = Field(default=0, sa_type=BigInteger)
    floor: int | None = Field(default=None, sa_type=BigInteger)
    ceiling: int | None = Field(default=None, sa_type=BigInteger)
    version: int = Field(default=0, sa_type=BigInteger)
    flagged_by_reversal_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime | None = _created_at()


class PendingTransfer(SQLModel, table=True):
    __tablename__ = "pending_transfers"

    id: int | None = _id()
    timebank_id: int = Field(sa_type=BigInteger)
    debit_account_id: int = Field(sa_type=BigInteger)
    credit_account_id: int = Field(sa_type=BigInteger)
    minutes: int = Field(sa_type=BigInteger)
    kind: str
    state: str = "pending"
    memo: str | None = None
    created_at: datetime | None = _created_at()
    resolved_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Transfer(SQLModel, table=True):
    __tablename__ = "transfers"

    id: int | None = _id()
    timebank_id: int = Field(sa_type=BigInteger)
    debit_account_id: int = Field(sa_type=BigInteger)
    credit_account_id: int = Field(sa_type=BigInteger)
    minutes: int = Field(sa_type=BigInteger)
    kind: str
    pending_transfer_id: int | None = Field(default=None, sa_type=BigInteger)
    reverses_transfer_id: int | None = Field(default=None, sa_type=BigInteger)
    memo: str | None = None
    created_at: datetime | None = _created_at()


class Posting(SQLModel, table=True):
    __tablename__ = "postings"

    id: int | None = _id()
    timebank_id: int = Field(sa_type=BigInteger)
    transfer_id: int = Field(sa_type=BigInteger)
    account_id: int = Field(sa_type=BigInteger)
    minutes: int = Field(sa_type=BigInteger)
    balance_after: int = Field(sa_type=BigInteger)
    account_version: int = Field(sa_type=BigInteger)
    created_at: datetime | None = _created_at()


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    timebank_id: int = Field(primary_key=True, sa_type=BigInteger)
    author: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    request_hash: bytes = Field(sa_type=LargeBinary)
    result: dict | None = Field(default=None, sa_type=JSONB)
    created_at: datetime | None = _created_at()
