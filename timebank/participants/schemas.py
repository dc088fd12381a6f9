"""What the participants service takes and returns: the service's own records (dataclasses)
and the API's request and response models (``XCreate`` / ``XUpdate`` / ``XPublic``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from timebank.auth.roles import participant_roles_problem
from timebank.auth.schemas import Role
from timebank.fields import JsonBool, WholeNumber
from timebank.names import clean_name
from timebank.participants.contact import EMAIL_PATTERN as EMAIL_PATTERN
from timebank.participants.contact import ContactFields, ContactPreference, Email
from timebank.policy import POLICY_FIELDS as POLICY_FIELDS
from timebank.policy import ApprovalMode, BalanceDisplay, Policy

ParticipantKind = Literal["member", "professional", "organisation"]

DEFAULT_CATEGORIES: dict[str, str] = {
    "befriending": "Befriending and company",
    "gardening": "Gardening",
    "lifts": "Lifts and transport",
    "cooking": "Cooking and meals",
    "tutoring": "Tutoring and skills",
    "household": "Household help and DIY",
    "admin": "Letters, forms and admin",
    "wellbeing": "Health and wellbeing",
    "events": "Community events",
    "other": "Other",
}

SLUG_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$"
# A believable date of joining: nobody joined before 1900, nor more than a year from now.
EARLIEST_JOINED_ON = date(1900, 1, 1)
JOINED_ON_DAYS_AHEAD = 366

# The one policy type (timebank/policy.py), under the names the participants code uses: a
# timebank's policy as stored, and the policy fields a request checks.
TimebankPolicy = Policy
PolicyFields = Policy


@dataclass(frozen=True)
class TimebankRecord:
    id: int
    slug: str
    name: str
    community_fund_account_id: int
    policy: TimebankPolicy


@dataclass(frozen=True)
class ParticipantRecord:
    id: int
    timebank_id: int
    kind: str
    display_name: str
    joined_on: date
    account_id: int


# --- Timebanks ---------------------------------------------------------------------------------


def _cleaned_name(field: str, limit: int) -> Any:
    """A validator of ``field``: the name as ``clean_name`` gives it (up to ``limit``
    characters), or its error; None stays None."""

    def clean(cls: type, value: str | None) -> str | None:
        return clean_name(value, limit) if value is not None else None

    return field_validator(field)(classmethod(clean))


def check_joined_on(value: date | None) -> date | None:
    """``joined_on`` within a believable range, or ValueError."""
    latest = date.today() + timedelta(days=JOINED_ON_DAYS_AHEAD)
    if value is not None and not EARLIEST_JOINED_ON <= value <= latest:
        raise ValueError(f"must be between {EARLIEST_JOINED_ON} and {latest} (a year from today)")
    return value


class TimebankCreate(Policy):
    slug: str = Field(
        min_length=1,
        max_length=64,
        pattern=SLUG_PATTERN,
        description="lower-case letters, digits and inner hyphens; part of every URL",
    )
    name: str = Field(min_length=1, max_length=200)

    _name_present = _cleaned_name("name", 200)


class TimebankUpdate(BaseModel):
    """Fields to change (the name, or any field of ``Policy``); those left out keep their
    value. ``null`` clears a review rule. The whole policy is checked once changed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    default_floor_minutes: WholeNumber | None = None
    default_ceiling_minutes: WholeNumber | None = None
    max_exchange_minutes: WholeNumber | None = None
    welcome_grant_minutes: WholeNumber | None = None
    confirmation_required: JsonBool | None = None
    approval_mode: ApprovalMode | None = None
    review_above_minutes: WholeNumber | None = None
    review_backdated_days: WholeNumber | None = None
    review_organisation: JsonBool | None = None
    review_first_exchange: JsonBool | None = None
    balance_display: BalanceDisplay | None = None

    _name_present = _cleaned_name("name", 200)


class TimebankNamed(BaseModel):
    """What names a timebank in an answer, ahead of its policy."""

    id: int
    slug: str
    name: str
    community_fund_account_id: int


class TimebankPublic(Policy, TimebankNamed):
    """A timebank and its policy."""

    @classmethod
    def of(cls, record: TimebankRecord) -> TimebankPublic:
        return cls(
            id=record.id,
            slug=record.slug,
            name=record.name,
            community_fund_account_id=record.community_fund_account_id,
            **record.policy.as_dict(),
        )


# --- Participants ------------------------------------------------------------------------------


class ParticipantCreate(ContactFields):
    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(min_length=1, max_length=200)
    kind: ParticipantKind
    email: Email | None = Field(
        default=None,
        description="how to reach them by email; with an email, also an invitation for that"
        " address: whoever accepts it takes part as this participant, with the roles",
    )
    roles: list[Role] | None = Field(
        default=None,
        max_length=3,
        description="roles granted when the invitation is accepted; needs an email; "
        "default ['member']; never 'funder' (funders are staff, without a participant)",
    )
    joined_on: date | None = Field(
        default=None, description="default: today; from 1900-01-01 to a year from today"
    )

    _display_name_present = _cleaned_name("display_name", 200)

    @field_validator("joined_on")
    @classmethod
    def _joined_on_believable(cls, value: date | None) -> date | None:
        return check_joined_on(value)

    @field_validator("roles")
    @classmethod
    def _no_funder(cls, value: list[Role] | None) -> list[Role] | None:
        problem = participant_roles_problem(value or ())
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _roles_need_an_email(self) -> ParticipantCreate:
        if self.roles and self.email is None:
            raise ValueError("roles belong to a user: give an email to grant roles")
        return self


class ParticipantUpdate(ContactFields):
    """A participant's details to change (coordinators, admins): fields left out keep their
    value, ``null`` clears one (not the name). The preference must still name a way that is
    recorded. Changing the email sends no invitation."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    email: Email | None = None

    _display_name_present = _cleaned_name("display_name", 200)

    @model_validator(mode="after")
    def _something_to_change(self) -> ParticipantUpdate:
        if not self.model_fields_set:
            raise ValueError("name at least one field to change")
        if "display_name" in self.model_fields_set and self.display_name is None:
            raise ValueError("a participant keeps a name: display_name cannot be null")
        if "contact_preference" in self.model_fields_set and self.contact_preference is None:
            raise ValueError("contact_preference cannot be null: choose email, phone, text, post")
        return self


class ParticipantDirectoryEntry(BaseModel):
    """What every member sees of the others: enough to say whom they exchanged with."""

    id: int
    display_name: str
    kind: ParticipantKind


class ParticipantPublic(ParticipantDirectoryEntry):
    """A participant as coordinators (and the participant themselves) see them."""

    account_id: int
    joined_on: date
    email: str | None = Field(
        description="the email recorded to reach them, else the address of whoever accepted"
        " their invitation, else the address it was sent to"
    )
    phone: str | None
    postal_address: str | None
    contact_preference: ContactPreference
    external_id: str | None
    deactivated_at: datetime | None = Field(
        description="when a coordinator deactivated them (null: active); see DESIGN.md §5"
    )
    signed_up: bool = Field(description="someone has accepted their invitation")
    roles: list[Role]
    balance_minutes: int | None = Field(
        description="null for a member seeing themselves in a timebank that shows members"
        " the hours they gave and received, not a net balance"
    )
    pending_in_minutes: int
    pending_out_minutes: int
    floor_minutes: int
    ceiling_minutes: int


class ParticipantCreated(ParticipantPublic):
    """The answer to adding someone: the same whatever the email (one known elsewhere or not);
    roles are granted only when the invitation is accepted."""

    invited_roles: list[Role] = Field(
        default_factory=list, description="roles the invitation grants when accepted"
    )
    invitation_token: str | None = Field(
        default=None,
        description="one-time secret to hand to the person (shown once; not on a replay); "
        "null only without an email",
    )
    invitation_expires_at: datetime | None = None


class ParticipantPage(BaseModel):
    """A page of the full list (coordinators and admins)."""

    view: Literal["full"] = Field(description="the full list, with balances and roles")
    items: list[ParticipantPublic]
    next_after_id: int | None = Field(description="pass as after_id for the next page")


class ParticipantDirectoryPage(BaseModel):
    """A page of the directory (members)."""

    view: Literal["directory"] = Field(description="the directory: id, name, kind")
    items: list[ParticipantDirectoryEntry]
    next_after_id: int | None = Field(description="pass as after_id for the next page")


# --- Categories --------------------------------------------------------------------------------


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(min_length=1, max_length=64, pattern=SLUG_PATTERN)
    name: str = Field(min_length=1, max_length=100)

    _name_present = _cleaned_name("name", 100)


class CategoryPublic(BaseModel):
    id: int
    slug: str
    name: str
