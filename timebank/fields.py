"""Field types that every request model shares: strict where JSON is loose.

The request body is decoded before a model sees it, so pydantic's strict mode alone cannot tell
``true`` or ``"30"`` from an integer; these validators look at the decoded value itself."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _json_integer(value: object) -> object:
    """An integer as JSON writes it: never true, "30" or 30.0."""
    if type(value) is not int:
        raise ValueError("must be a whole number, written as a JSON integer")
    return value


def _json_boolean(value: object) -> object:
    """A boolean as JSON writes it: never 1, "yes" or "true"."""
    if type(value) is not bool:
        raise ValueError("must be true or false, written as a JSON boolean")
    return value


def _calendar_day(value: object) -> object:
    """A day as YYYY-MM-DD (or a date), not a number of seconds or a timestamp."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return value
    raise ValueError("must be a day written YYYY-MM-DD")


WholeNumber = Annotated[int, BeforeValidator(_json_integer)]
JsonBool = Annotated[bool, BeforeValidator(_json_boolean)]
CalendarDay = Annotated[date, BeforeValidator(_calendar_day)]
# Text that PostgreSQL can store: refused here, naming the field, rather than by the database.
Text = Annotated[str, AfterValidator(_no_nul)]
