"""Roles, staff and invitations as the API speaks of them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from timebank.auth.schemas import Role, StaffRole
from timebank.participants.schemas import EMAIL_PATTERN


class RolesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[Role] = Field(max_length=3, description="the complete set; [] removes all")


class StaffInvite(BaseModel):
    """Someone who coordinates or funds without taking part in exchanges: no participant."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)
    roles: list[StaffRole] = Field(
        min_length=1, max_length=2, description="granted when the invitation is accepted"
    )

    @field_validator("email")
    @classmethod
    def _email_trimmed(cls, value: str) -> str:
        return value.strip()


class StaffRolesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[StaffRole] = Field(max_length=2, description="the complete set; [] removes all")


class StaffPublic(BaseModel):
    """A user with roles in the timebank and no participant in it."""

    user_id: int
    display_name: str
    email: str
    roles: list[Role]


class RoleChangePublic(BaseModel):
    """One change of someone's roles in the timebank: by whom, from what to what, when."""

    id: int
    user_id: int | None = Field(description="whose roles changed (null once erased)")
    participant_id: int | None
    changed_by: int | None = Field(
        description="the user who changed them (for an accepted invitation: who invited)"
    )
    invitation_id: int | None = Field(description="set when an accepted invitation granted them")
    from_roles: list[Role]
    to_roles: list[Role]
    changed_at: datetime


class InvitationPublic(BaseModel):
    invitation_token: str = Field(description="one-time secret; shown here only")
    expires_at: datetime
    roles: list[Role] = Field(description="granted when the invitation is accepted")
