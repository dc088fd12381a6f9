"""The layouts an import file may have: our own columns, and the lists TimeOverflow lets a
timebank's administrators download (its member list and its transfer list). docs/design.md
(Imports) says where TimeOverflow's headers and units come from."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from timebank.hours import DurationError, parse_balance
from timebank.imports.reading import Format

OURS = "timebank"
TIMEOVERFLOW = "timeoverflow"

PEOPLE_OURS = Format(
    OURS,
    {
        "name": "name",
        "kind": "kind",
        "email": "email",
        "phone": "phone",
        "postal address": "postal_address",
        "contact preference": "contact_preference",
        "joined on": "joined_on",
        "opening balance": "opening_balance",
        "external id": "external_id",
    },
    required=("name",),
)

# TimeOverflow's member list (its report of members, in English): the member's number in
# the timebank (``N``), name, email, phones, when they joined, and their balance in seconds.
# Its complete member report adds columns read and ignored here (birth date, gender, …).
PEOPLE_TIMEOVERFLOW = Format(
    TIMEOVERFLOW,
    {
        "n": "external_id",
        "name": "name",
        "username": "name",
        "email": "email",
        "phone": "phone",
        "alternative phone": "alt_phone",
        "alt phone": "alt_phone",
        "address": "postal_address",
        "created": "joined_on",
        "created at": "joined_on",
        "balance": "opening_balance",
        "last login": None,
        "locale": None,
        "language": None,
        "date of birth": None,
        "updated": None,
        "gender": None,
        "description": None,
        "terms accepted at": None,
        "current sign in at": None,
        "last sign in at": None,
        "receive notifications": None,
        "notifications": None,
    },
    required=("name", "external_id"),
)

HISTORY_OURS = Format(
    OURS,
    {
        "service date": "service_date",
        "giver": "giver",
        "receiver": "receiver",
        "minutes": "minutes",
        "category": "category",
        "description": "description",
    },
    required=("service_date", "giver", "receiver", "minutes"),
)

# TimeOverflow's transfer list: when, from whom (whose balance went down: the one who
# received the help) to whom (who gave it), the post it answered, and how much: in seconds
# (``h:mm`` as its page shows it, and decimal hours in its complete report, are read too).
HISTORY_TIMEOVERFLOW = Format(
    TIMEOVERFLOW,
    {
        "date": "service_date",
        "from": "receiver",
        "to": "giver",
        "from id": "receiver_id",
        "to id": "giver_id",
        "post": "description",
        "post id": None,
        "reason": "reason",
        "comments": "reason",
        "quantity": "minutes",
    },
    required=("service_date", "receiver", "giver", "minutes"),
)

# How TimeOverflow names a member in its lists: "Name (member number)".
NAME_WITH_NUMBER = re.compile(r"^(?P<name>.*\S)\s*\((?P<number>[0-9]+)\)$")
# What it writes for someone it no longer shows.
HIDDEN_PEOPLE = frozenset(
    {"inactive_user", "deleted_user", "the user isn't active", "the user no longer exists"}
)
_DECIMAL_HOURS = re.compile(r"^[0-9]{1,5}\.[0-9]{1,2}$")
_WHOLE = re.compile(r"^-?[0-9]{1,9}$")


class CellError(ValueError):
    """A cell does not read as what its column holds; the message says what would."""


def read_date(text: str, *, timeoverflow: bool) -> date:
    """A date as ``YYYY-MM-DD``; TimeOverflow's timestamps ("2019-03-04 10:11:12 UTC") by
    their date."""
    value = text.strip()
    if timeoverflow and len(value) > 10 and value[10] in " T":
        value = value[:10]
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise CellError(f"{text!r} is not a date: write it as YYYY-MM-DD") from error


def read_minutes(text: str, *, timeoverflow: bool) -> int:
    """A duration in whole minutes. Ours: minutes ("90") or ``h:mm`` ("1:30"). TimeOverflow's:
    seconds ("5400"), ``h:mm``, or decimal hours ("1.5"). Fractions of a minute are refused."""
    value = text.strip()
    if not value:
        raise CellError("say how long")
    if timeoverflow and _DECIMAL_HOURS.match(value):
        exact = Decimal(value) * 60
        if exact != exact.to_integral_value() or exact <= 0:
            raise CellError(f"{value!r} hours is not a positive whole number of minutes")
        return int(exact)
    if timeoverflow and _WHOLE.match(value):
        minutes = seconds_to_minutes(value)
    else:
        try:
            minutes = parse_balance(value)
        except DurationError as error:
            unit = "seconds, h:mm or decimal hours" if timeoverflow else "minutes (90) or h:mm"
            raise CellError(f"{value!r} is not a duration: write it in {unit}") from error
    if minutes <= 0:
        raise CellError("the time must be more than zero")
    return minutes


def seconds_to_minutes(text: str) -> int:
    """TimeOverflow's seconds as whole minutes (refused when they are not whole)."""
    if not _WHOLE.match(text.strip()):
        raise CellError(f"{text!r} is not a whole number of seconds")
    seconds = int(text)
    if seconds % 60:
        raise CellError(f"{text!r} seconds is not a whole number of minutes")
    return seconds // 60


def read_balance(text: str, *, timeoverflow: bool) -> int:
    """An opening balance in signed minutes: ours ``h:mm`` or minutes, TimeOverflow's seconds."""
    if timeoverflow:
        return seconds_to_minutes(text)
    try:
        return parse_balance(text)
    except DurationError as error:
        raise CellError(str(error)) from error
