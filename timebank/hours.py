"""Hours as people write them, and as we show them: the one place that turns "1:30", "1.5",
"1½ h" or "90 min" into integer minutes, and minutes back into "1:30"."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# The longest time a person may type: a week, far above any timebank's maximum per exchange,
# so that a typo like "1500" (hours) is refused rather than read.
MAX_TYPED_MINUTES = 24 * 60 * 7


class DurationError(ValueError):
    """The text does not read as a duration; the message says what would."""


_HOURS_MINUTES = re.compile(r"^(?P<h>[0-9]{1,3})\s*:\s*(?P<m>[0-9]{1,2})$")
_NUMBER = r"(?P<n>[0-9]{1,4}(?:[.,][0-9]{1,3})?|[.,][0-9]{1,3})"
_UNIT_MINUTES = re.compile(rf"^{_NUMBER}\s*(?:m|min|mins|minute|minutes)\.?$")
_UNIT_HOURS = re.compile(rf"^{_NUMBER}?\s*(?P<half>½)?\s*(?:h|hr|hrs|hour|hours)?\.?$")
_COMBINED = re.compile(
    r"^(?P<h>[0-9]{1,3})\s*(?:h|hr|hrs|hour|hours)\.?\s*(?:and\s+)?(?P<m>[0-9]{1,2})\s*"
    r"(?:m|min|mins|minute|minutes)?\.?$"
)

MINUS = "\u2212"
HELP = "write it as 1:30, 1.5 or 90 min"


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation as error:  # the patterns above make this unreachable
        raise DurationError(f"{text!r} is not a number; {HELP}") from error


def parse_duration(text: str) -> int:
    """Whole minutes from what a person typed. A bare number is hours ("1.5" is 90 minutes);
    "1:30" is hours and minutes; "90 min" and "1 h 30" say their unit. Fractions of a minute
    are refused rather than rounded, so what is recorded is what was meant."""
    cleaned = " ".join(text.strip().lower().split())
    if not cleaned:
        raise DurationError(f"say how long; {HELP}")
    minutes: Decimal
    if match := _HOURS_MINUTES.match(cleaned):
        if int(match["m"]) >= 60:
            raise DurationError(f"{text.strip()!r}: minutes after the colon go up to 59; {HELP}")
        minutes = Decimal(int(match["h"]) * 60 + int(match["m"]))
    elif match := _COMBINED.match(cleaned):
        if int(match["m"]) >= 60:
            raise DurationError(f"{text.strip()!r}: minutes go up to 59; {HELP}")
        minutes = Decimal(int(match["h"]) * 60 + int(match["m"]))
    elif match := _UNIT_MINUTES.match(cleaned):
        minutes = _decimal(match["n"])
    elif (match := _UNIT_HOURS.match(cleaned)) and (match["n"] or match["half"]):
        hours = _decimal(match["n"]) if match["n"] else Decimal(0)
        minutes = (hours + (Decimal("0.5") if match["half"] else 0)) * 60
    else:
        raise DurationError(f"{text.strip()!r} does not read as a length of time; {HELP}")
    if minutes != minutes.to_integral_value():
        raise DurationError(f"{text.strip()!r} is not a whole number of minutes; {HELP}")
    if minutes <= 0:
        raise DurationError("the time given must be more than zero")
    if minutes > MAX_TYPED_MINUTES:
        raise DurationError(f"{text.strip()!r} is more than a week; {HELP}")
    return int(minutes)


def format_minutes(minutes: int, *, signed: bool = False) -> str:
    """Minutes as hours and minutes: 90 → "1:30", -45 → "\u22120:45" (a true minus sign, which
    screen readers say), and with ``signed`` a plus for positive amounts."""
    sign = MINUS if minutes < 0 else ("+" if signed and minutes > 0 else "")
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours}:{rest:02d}"


def describe_minutes(minutes: int) -> str:
    """Minutes in words, for the echo under the field and for screen readers: 90 →
    "1 hour 30 minutes"."""
    hours, rest = divmod(abs(minutes), 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if rest or not hours:
        parts.append(f"{rest} minute{'s' if rest != 1 else ''}")
    return ("minus " if minutes < 0 else "") + " ".join(parts)


_SIGNED_BALANCE = re.compile(
    r"^(?P<sign>[-+\u2212]?)\s*(?:(?P<h>[0-9]{1,5}):(?P<m>[0-9]{2})|(?P<n>[0-9]{1,7}))$"
)


def parse_balance(text: str) -> int:
    """Signed whole minutes from a balance as a file gives it: ``h:mm`` ("-1:30") or a whole
    number of minutes ("-90"); a minus (or U+2212) for a debt. Anything else is refused."""
    cleaned = text.strip()
    match = _SIGNED_BALANCE.match(cleaned)
    if match is None:
        raise DurationError(
            f"{cleaned!r} is not a balance; write it as h:mm (-1:30) or minutes (-90)"
        )
    if match["n"] is not None:
        minutes = int(match["n"])
    else:
        if int(match["m"]) >= 60:
            raise DurationError(f"{cleaned!r}: minutes after the colon go up to 59")
        minutes = int(match["h"]) * 60 + int(match["m"])
    return -minutes if match["sign"] in ("-", MINUS) else minutes
