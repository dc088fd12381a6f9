"""Sign-in, tokens and invitations as the API speaks of them; who is asking."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from timebank.errors import Forbidden
from timebank.fields import WholeNumber

Role = Literal["member", "coordinator", "funder"]
# Roles held without a participant: staff coordinate or fund, they do not exchange.
StaffRole = Literal["coordinator", "funder"]


def has_part(is_admin: bool, roles: Collection[str]) -> bool:
    """Whether someone has a part in a timebank, given their roles there (or anywhere, given
    all their roles): a site admin has one everywhere, anyone else by holding a role."""
    return is_admin or bool(roles)


@dataclass(frozen=True)
class Principal:
    """The signed-in user behind a request."""

    user_id: int
    email: str
    is_admin: bool
    token_id: int
    via_cookie: bool = False
    # The credential itself, where a route needs it (making tokens): its kind and end.
    token_kind: str | None = None
    token_expires_at: datetime | None = None


@dataclass(frozen=True)
class TimebankAccess:
    """What one principal is in one timebank: roles, and the participant they act as."""

    principal: Principal
    timebank_id: int
    timebank_slug: str
    roles: frozenset[str] = field(default_factory=frozenset)
    participant_id: int | None = None
    # A coordinator deactivated that participant: the user logs nothing new here (DESIGN.md §5).
    participant_deactivated: bool = False

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin

    @property
    def is_coordinator(self) -> bool:
        return "coordinator" in self.roles

    @property
    def is_funder(self) -> bool:
        return "funder" in self.roles

    @property
    def can_manage(self) -> bool:
        """Coordinators of this timebank and site admins."""
        return self.is_admin or self.is_coordinator

    @property
    def party_id(self) -> int | None:
        """The participant this user is in exchanges, whatever their roles: the side they take
        in one they log or confirm, and never a decider of one they are party to. Funders take
        no part in exchanges."""
        return self.participant_id if self.can_manage or "member" in self.roles else None

    def require_active(self, what: str) -> None:
        """Refuse ``what`` (something new: an exchange, a session, a gift) to a user whose
        participant a coordinator has deactivated here (DESIGN.md §5)."""
        if self.participant_deactivated:
            raise Forbidden(
                f"your participation in this timebank is paused by a coordinator: you cannot"
                f" {what} here until they reactivate it"
            )

    @property
    def member_participant_id(self) -> int | None:
        """The participant this user acts as when they act as a member."""
        return self.participant_id if "member" in self.roles else None


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("cannot contain a NUL character")
    return value


NoNul = AfterValidator(_no_nul)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, NoNul] = Field(min_length=3, max_length=254)
    password: Annotated[str, NoNul] = Field(min_length=1, max_length=200)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[str, NoNul] = Field(min_length=1, max_length=200)
    new_password: Annotated[str, NoNul] = Field(min_length=1, max_length=200)


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, NoNul] = Field(min_length=10, max_length=200)
    password: Annotated[str, NoNul] = Field(min_length=1, max_length=200)


class LoginResponse(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_at: datetime
    user_id: int
    email: str
    is_admin: bool


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, NoNul] = Field(min_length=1, max_length=100)
    expires_in_days: WholeNumber | None = Field(
        default=None,
        ge=1,
        description="how long the token lasts (default TIMEBANK_API_TOKEN_DAYS, at most "
        "TIMEBANK_API_TOKEN_MAX_DAYS)",
    )


class TokenPublic(BaseModel):
    id: int
    name: str
    kind: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str


class InvitationAccept(BaseModel):
    """With a password: a new account for the invitation's address (signed out). Without:
    the signed-in caller (bearer token or session) accepts it with their own account."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=10, max_length=200)
    password: str | None = Field(default=None, min_length=1, max_length=200)


class InvitationAccepted(BaseModel):
    """What accepting an invitation while signed in did: the caller's part in the timebank."""

    user_id: int
    timebank_slug: str
    participant_id: int | None
    roles: list[Role] = Field(description="the caller's roles in the timebank now")


class MePublic(BaseModel):
    user_id: int
    email: str
    display_name: str
    is_admin: bool
    timebanks: list[MembershipPublic]


class MembershipPublic(BaseModel):
    slug: str
    name: str
    roles: list[str]
    participant_id: int | None


MePublic.model_rebuild()
