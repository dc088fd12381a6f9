"""What the exchanges API takes and returns, and the records the service works with.

Request and response models are pydantic; the rows read from the database are plain frozen
dataclasses that never leave the service layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from timebank.fields import CalendarDay, Text, WholeNumber
from timebank.openapi import MAX_ID
from timebank.policy import Policy as Policy  # the timebank's policy, read when logging

ExchangeState = Literal[
    "logged", "awaiting_approval", "disputed", "approved", "rejected", "cancelled", "reversed"
]
DecisionAction = Literal[
    "log", "confirm", "dispute", "approve", "reject", "cancel", "reverse", "auto_approve"
]
ActorRole = Literal["member", "coordinator", "admin", "policy"]
Side = Literal["giver", "receiver"]

# The most minutes any request may log, far above every timebank's own maximum per exchange.
MAX_LOGGED_MINUTES = 2**31 - 1
# The most legs one group session has.
MAX_LEGS = 200
# Older help is not believable as logged; the bound leaves room for imported history.
EARLIEST_SERVICE_DATE = date(2000, 1, 1)


# ---------------------------------------------------------------------------------------------
# Requests.
# ---------------------------------------------------------------------------------------------


class LegCreate(BaseModel):
    """One exchange's parties and minutes, or one leg of a group session's: ``giver_id`` gave
    ``minutes`` of help to ``receiver_id``."""

    model_config = ConfigDict(extra="forbid")

    # Strict: a JSON integer, never true, "30" or 30.0.
    giver_id: WholeNumber = Field(ge=1, le=MAX_ID, description="participant who gave the help")
    receiver_id: WholeNumber = Field(ge=1, le=MAX_ID, description="participant who received it")
    minutes: WholeNumber = Field(
        gt=0, le=MAX_LOGGED_MINUTES, description="whole minutes of help (an integer)"
    )


class _WhenAndWhat(BaseModel):
    """What an exchange and a group session both say: the day, the kind of help, a note."""

    model_config = ConfigDict(extra="forbid")

    service_date: CalendarDay = Field(
        description="the day the help was given, YYYY-MM-DD: from 2000-01-01, not in the future",
    )
    category: Text = Field(min_length=1, max_length=100, description="a category slug")
    description: Text = Field(default="", max_length=2000)


class ExchangeCreate(_WhenAndWhat, LegCreate):
    """An exchange of time to log: ``giver_id`` gave ``minutes`` of help to ``receiver_id``."""

    logged_for: Side | None = Field(
        default=None,
        description="coordinators only: the party they log on behalf of (default: the giver)",
    )


class GroupSessionCreate(_WhenAndWhat):
    """A group session to log: one host gives to every attendee (a class, a lunch club) or
    receives from each (volunteers at an organisation's event), one leg per attendee."""

    legs: list[LegCreate] = Field(
        min_length=1,
        max_length=MAX_LEGS,
        description=f"1 to {MAX_LEGS} legs, each between the host and one attendee",
    )
    host_id: WholeNumber | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="the host, on the same side of every leg (default: the one participant"
        " who is; the giver of a single leg)",
    )


class DecisionRequest(BaseModel):
    """A decision on an exchange; a reason is required to dispute or reverse."""

    model_config = ConfigDict(extra="forbid")

    reason: Text | None = Field(default=None, max_length=2000)


class BulkApprove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[WholeNumber, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=100)


# ---------------------------------------------------------------------------------------------
# Responses.
# ---------------------------------------------------------------------------------------------


class DecisionPublic(BaseModel):
    """One decision taken on an exchange: who, in which role, when, on whose behalf, why."""

    id: int
    action: DecisionAction
    from_state: ExchangeState | None
    to_state: ExchangeState
    actor_user_id: int | None
    actor_role: ActorRole
    on_behalf_of: int | None
    reason: str | None
    decided_at: datetime


class ExchangePublic(BaseModel):
    id: int
    giver_id: int
    receiver_id: int
    minutes: int
    service_date: date
    category: str
    description: str
    state: ExchangeState
    logged_by_user_id: int | None
    logged_for: Side
    on_behalf: bool
    review_reason: str | None
    transfer_id: int | None
    reversal_transfer_id: int | None
    created_at: datetime
    updated_at: datetime
    group_id: int | None = Field(
        default=None, description="the group session this exchange is one leg of, if any"
    )


class ExchangeDetail(ExchangePublic):
    """An exchange with every decision taken on it, oldest first."""

    decisions: list[DecisionPublic]


class LegPublic(BaseModel):
    """One leg of a group session as its answer lists it."""

    id: int
    giver_id: int
    receiver_id: int
    minutes: int
    state: ExchangeState


class GroupSessionDetail(BaseModel):
    """A group session: one record, decided as one; each leg is an exchange of its own
    (``GET …/exchanges/{leg id}`` gives its decisions). ``state`` is its legs' state, or, while
    they differ, the one that holds it up (disputed, then logged: an attendee still to confirm);
    a member who attended sees only their own leg among ``legs``."""

    id: int
    kind: Literal["group"] = "group"
    host_id: int
    host_side: Side
    attendees: int = Field(description="legs in the session")
    minutes: int = Field(description="its legs' minutes, summed")
    service_date: date
    category: str
    description: str
    state: ExchangeState
    review_reason: str | None
    logged_by_user_id: int | None
    on_behalf: bool
    created_at: datetime
    legs: list[LegPublic]


class ExchangePage(BaseModel):
    """A page of exchanges in ascending id order; pass ``next_after_id`` as ``after_id``."""

    items: list[ExchangePublic]
    next_after_id: int | None


class BulkError(BaseModel):
    type: str
    status: int
    detail: str


class BulkOutcome(BaseModel):
    id: int
    state: ExchangeState | None
    error: BulkError | None = None


class BulkApproveResult(BaseModel):
    results: list[BulkOutcome]


# ---------------------------------------------------------------------------------------------
# Records read from the database (service layer only).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    """A participant as an exchange sees them; ``takes_part`` is false when their user is in
    the timebank as a funder only (or has no role left): someone who can never confirm;
    ``active`` is false once a coordinator has deactivated them."""

    id: int
    kind: str
    account_id: int
    takes_part: bool = True
    active: bool = True


@dataclass(frozen=True)
class ExchangeRecord:
    id: int
    timebank_id: int
    giver_id: int
    receiver_id: int
    minutes: int
    service_date: date
    category: str
    description: str
    state: ExchangeState
    logged_by_user_id: int | None
    logged_for: Side
    on_behalf: bool
    review_reason: str | None
    pending_transfer_id: int | None
    transfer_id: int | None
    reversal_transfer_id: int | None
    created_at: datetime
    updated_at: datetime
    group_id: int | None = None

    @property
    def parties(self) -> tuple[int, int]:
        return (self.giver_id, self.receiver_id)

    @property
    def counterparty_id(self) -> int:
        """The party who did not log it: the one who confirms or disputes."""
        return self.receiver_id if self.logged_for == "giver" else self.giver_id


@dataclass(frozen=True)
class DecisionRecord:
    id: int
    action: DecisionAction
    from_state: ExchangeState | None
    to_state: ExchangeState
    actor_user_id: int | None
    actor_role: ActorRole
    on_behalf_of: int | None
    reason: str | None
    decided_at: datetime


@dataclass(frozen=True)
class ExchangeFilters:
    state: ExchangeState | None = None
    participant_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    after_id: int | None = None
    limit: int = 50


@dataclass(frozen=True)
class Actor:
    """Who takes a decision, as the decision history records it."""

    user_id: int | None
    role: ActorRole
    on_behalf_of: int | None = None


POLICY_ACTOR = Actor(user_id=None, role="policy")


@dataclass(frozen=True)
class LogResult:
    """A logged exchange, and whether it was logged before under the same idempotency key."""

    exchange: ExchangeDetail
    replayed: bool


@dataclass(frozen=True)
class GroupRecord:
    """A group session's row."""

    id: int
    timebank_id: int
    host_id: int
    host_side: Side
    legs: int
    minutes: int
    service_date: date
    category: str
    description: str | None
    logged_by_user_id: int | None
    on_behalf: bool
    created_at: datetime


@dataclass(frozen=True)
class GroupLogResult:
    """A logged group session, and whether it was logged before under the same key."""

    session: GroupSessionDetail
    replayed: bool
