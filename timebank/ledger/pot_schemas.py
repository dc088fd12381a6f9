"""What the routes of gifts, grants, leaving, opening balances and the community pot take and
answer, and a member's balance shown as hours given and received."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from timebank.fields import WholeNumber
from timebank.openapi import MAX_ID
from timebank.policy import MAX_POLICY_MINUTES

MAX_NOTE = 500
MAX_MOVEMENTS = 200  # the most movements of the pot one answer lists


def _plain_note(value: str | None) -> str | None:
    """A note stripped, None when empty; refused with a NUL character."""
    if value is None:
        return None
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value.strip() or None


class GiftCreate(BaseModel):
    """A gift from the caller's own account (``from_id``) to a member or to the pot (``to_id``
    null); or a coordinator's grant from the pot (``from_id`` null) to a member, its reason in
    ``note``."""

    model_config = ConfigDict(extra="forbid")

    from_id: WholeNumber | None = Field(
        ge=1, le=MAX_ID, description="the giver: your own participant; null for a grant"
    )
    to_id: WholeNumber | None = Field(
        ge=1, le=MAX_ID, description="the member who receives; null for the community pot"
    )
    minutes: WholeNumber = Field(gt=0, le=MAX_POLICY_MINUTES)
    note: str | None = Field(
        default=None,
        max_length=MAX_NOTE,
        description="a few words with the gift; a grant's reason (required for a grant)",
    )

    @field_validator("note")
    @classmethod
    def _note_plain(cls, value: str | None) -> str | None:
        return _plain_note(value)


class GiftPublic(BaseModel):
    """A gift or grant as recorded, with the transfer that moved its minutes."""

    id: int
    kind: Literal["gift", "grant"]
    from_id: int | None = Field(description="null: a grant from the community pot")
    to_id: int | None = Field(description="null: a gift to the community pot")
    minutes: int
    note: str | None
    transfer_id: int
    created_at: datetime


class LeaveRequest(BaseModel):
    """Where a leaving participant's balance goes: a member, or the pot (null). A balance in
    debt always goes to the pot."""

    model_config = ConfigDict(extra="forbid")

    balance_to: WholeNumber | None = Field(
        default=None, ge=1, le=MAX_ID, description="a member's participant id; null: the pot"
    )


class DeparturePublic(BaseModel):
    """A participant's leaving, as recorded: the balance their account held when it closed and
    where it went (by which transfer; none for a balance of zero)."""

    participant_id: int
    account_id: int
    balance_to: int | None = Field(description="null: the community pot")
    balance_minutes: int
    transfer_id: int | None
    left_at: datetime


class OpeningBalanceUpdate(BaseModel):
    """A participant's starting balance against the pot, in minutes (either sign)."""

    model_config = ConfigDict(extra="forbid")

    minutes: WholeNumber = Field(ge=-MAX_POLICY_MINUTES, le=MAX_POLICY_MINUTES)


class OpeningBalancePublic(BaseModel):
    participant_id: int
    account_id: int
    minutes: int
    transfer_id: int | None = Field(description="null for an opening balance of zero")
    set_at: datetime


class PotMovementPublic(BaseModel):
    """One movement of the pot: in (gifts to it, debts taken from leavers, opening balances in
    debt) or out (grants, welcome hours, opening balances in credit, balances of leavers in
    debt)."""

    transfer_id: int
    kind: str
    minutes: int = Field(gt=0)
    direction: Literal["in", "out"]
    participant_id: int | None = Field(description="the participant on the other side")
    note: str | None = Field(description="a gift's note or a grant's reason")
    balance_after: int
    account_version: int
    created_at: datetime


class PotPublic(BaseModel):
    """The community pot's balance and its movements, newest first; pass
    ``next_before_version`` as ``before_version`` for older ones."""

    account_id: int
    balance_minutes: int
    movements: list[PotMovementPublic]
    next_before_version: int | None


class GivenReceivedPublic(BaseModel):
    """A member's own balance as the hours they gave and received in exchanges, with no net
    figure (their timebank's ``balance_display`` is ``given_received``)."""

    participant_id: int
    account_id: int
    display: Literal["given_received"] = "given_received"
    given_minutes: int = Field(description="minutes of exchanges they gave (not reversed)")
    received_minutes: int = Field(description="minutes of exchanges they received")
    pending_in_minutes: int
    pending_out_minutes: int


class StandingPublic(BaseModel):
    """Where a participant's account stands beside its balance: its opening balance (null if
    never set), and whether and how they left."""

    participant_id: int
    account_id: int
    opening_minutes: int | None
    left_at: datetime | None
    left_balance_to: int | None = Field(description="null: the pot (or not left)")
    left_with_minutes: int | None
