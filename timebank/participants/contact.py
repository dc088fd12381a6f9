"""How to reach a participant: the contact fields as requests carry them, the rule that a
preference names a way that is recorded, and the one line every coordinator screen shows."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

ContactPreference = Literal["email", "phone", "text", "post"]
# What each preference needs recorded, as the participant's field name.
NEEDS: dict[str, str] = {
    "email": "email",
    "phone": "phone",
    "text": "phone",
    "post": "postal_address",
}
NO_WAY = "no way to reach recorded"

# The database's own checks (schema/sql/0007_contact_details.sql), so that a bad value is a
# clear 422 here and never a refusal at the insert.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"
PHONE_PATTERN = r"^\+?[0-9 ()-]{3,30}$"
# Control characters (NUL included) and the bidirectional marks that could disguise an
# address on screen; a postal address keeps its line breaks.
_UNPRINTABLE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _printable(value: str, *, lines: bool = False) -> str:
    """``value`` trimmed (a postal address's lines each trimmed, blank ones dropped), or
    ValueError when it holds a control character."""
    if lines:
        value = "\n".join(
            line.strip() for line in value.replace("\r\n", "\n").split("\n") if line.strip()
        )
    elif "\n" in value:
        raise ValueError("must be on one line")
    if _UNPRINTABLE.search(value):
        raise ValueError("cannot contain control characters")
    if not value.strip():
        raise ValueError("cannot be blank (null clears it)")
    return value.strip()


def _one_line(value: str) -> str:
    return _printable(value)


def _address(value: str) -> str:
    return _printable(value, lines=True)


Email = Annotated[
    str,
    AfterValidator(_one_line),
    Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN),
]
Phone = Annotated[
    str,
    AfterValidator(_one_line),
    Field(
        min_length=3,
        max_length=30,
        pattern=PHONE_PATTERN,
        description="digits, spaces, brackets and hyphens, perhaps a leading +",
    ),
]
PostalAddress = Annotated[
    str,
    AfterValidator(_address),
    Field(min_length=1, max_length=500, description="lines separated by line breaks"),
]
ExternalId = Annotated[
    str,
    AfterValidator(_one_line),
    Field(
        min_length=1,
        max_length=100,
        description="their id in the system the timebank moved from; unique in the timebank",
    ),
]


def contact_problem(
    preference: str, email: str | None, phone: str | None, postal_address: str | None
) -> tuple[str, str] | None:
    """``(field, message)`` when the preferred way to reach someone is not recorded."""
    needed = NEEDS[preference]
    recorded = {"email": email, "phone": phone, "postal_address": postal_address}
    if recorded[needed] is None:
        wanted = {"email": "an email", "phone": "a phone number", "postal_address": "an address"}
        return needed, f"a contact preference of {preference!r} needs {wanted[needed]}"
    return None


def default_preference(
    email: str | None, phone: str | None, postal_address: str | None
) -> ContactPreference:
    """The preference of someone enrolled without one: the first way recorded of email, phone
    and post (email when none is, as the column's default)."""
    if email is None and phone is not None:
        return "phone"
    if email is None and postal_address is not None:
        return "post"
    return "email"


def how_to_reach(
    preference: str, email: str | None, phone: str | None, postal_address: str | None
) -> str:
    """The one line a coordinator reads to reach someone: their preferred way, else the first
    way recorded (email, phone, post), else that there is none."""
    ways = {
        "email": f"Email {email}" if email else None,
        "phone": f"Phone {phone}" if phone else None,
        "text": f"Text {phone}" if phone else None,
        "post": "Post: " + ", ".join(postal_address.splitlines()) if postal_address else None,
    }
    for way in (preference, "email", "phone", "post"):
        if ways.get(way):
            return ways[way]  # type: ignore[return-value]
    return NO_WAY


class ContactFields(BaseModel):
    """How to reach someone, as a request gives it; every field may be left out."""

    phone: Phone | None = None
    postal_address: PostalAddress | None = None
    contact_preference: ContactPreference | None = Field(
        default=None,
        description="how they want to hear from the timebank; needs that way recorded (email:"
        " an email, phone or text: a phone, post: a postal address). Default: the first"
        " recorded of email, phone, post",
    )
    external_id: ExternalId | None = None
