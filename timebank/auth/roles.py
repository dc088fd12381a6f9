"""Which roles go together, as pure rules: the member role is a participant's; a funder sees
aggregate figures and never takes part in exchanges, so never holds a participant; staff
(coordinators, funders) may be invited without one. A coordinator with a participant stays
allowed (a professional who also coordinates)."""

from __future__ import annotations

from collections.abc import Iterable

FUNDER_WITH_PARTICIPANT = (
    "a funder sees aggregate figures and never takes part in exchanges, so a participant's "
    "user cannot be a funder: invite funders as staff, without a participant"
)
MEMBER_WITHOUT_PARTICIPANT = "the member role belongs to a participant: add them as one"


def participant_roles_problem(roles: Iterable[str]) -> str | None:
    """Why these roles cannot be held by a participant's user, or None."""
    return FUNDER_WITH_PARTICIPANT if "funder" in set(roles) else None


def staff_roles_problem(roles: Iterable[str]) -> str | None:
    """Why these roles cannot be held by a user without a participant, or None ([] is fine:
    it removes every role)."""
    return MEMBER_WITHOUT_PARTICIPANT if "member" in set(roles) else None


def roles_problem(roles: Iterable[str], *, has_participant: bool) -> str | None:
    """Why a user with (or without) a participant in a timebank cannot hold ``roles`` there."""
    if has_participant:
        return participant_roles_problem(roles)
    return staff_roles_problem(roles)
