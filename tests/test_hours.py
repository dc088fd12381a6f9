"""Durations as members type them, read the one way the whole service reads them."""

import pytest

from timebank.hours import DurationError, describe_minutes, format_minutes, parse_duration


@pytest.mark.parametrize(
    ("typed", "minutes"),
    [
        ("1:30", 90),
        ("0:45", 45),
        (" 2 : 05 ", 125),
        ("1.5", 90),
        ("1,5", 90),
        (".25", 15),
        ("2", 120),
        ("90 min", 90),
        ("90min", 90),
        ("90 minutes", 90),
        ("45 m", 45),
        ("1.5 h", 90),
        ("2 hours", 120),
        ("1 hour", 60),
        ("1h30", 90),
        ("1 h 30 min", 90),
        ("1 hour and 15 minutes", 75),
        ("1½", 90),
        ("½ h", 30),
        ("1 ½ hours", 90),
        ("12:00", 720),
    ],
)
def test_what_people_type_is_understood(typed, minutes):
    assert parse_duration(typed) == minutes


@pytest.mark.parametrize(
    "typed",
    [
        *("", "   ", "abc", "1:75", "0", "0:00", "0 min", "1.01", "-1", "1:30:00", "200 hours"),
        *("h", "\u0663", "\u0661:\u0663\u0660", "\uff13 hours", "\u0969 min"),  # other digits
    ],
)
def test_what_cannot_be_meant_is_refused_with_a_hint(typed):
    with pytest.raises(DurationError) as refused:
        parse_duration(typed)
    assert str(refused.value)


def test_minutes_are_shown_as_hours_and_minutes():
    assert format_minutes(90) == "1:30"
    assert format_minutes(0) == "0:00"
    assert format_minutes(-45) == "\u22120:45"  # a true minus sign
    assert format_minutes(600) == "10:00"
    assert format_minutes(30, signed=True) == "+0:30"


def test_minutes_in_words():
    assert describe_minutes(90) == "1 hour 30 minutes"
    assert describe_minutes(60) == "1 hour"
    assert describe_minutes(1) == "1 minute"
    assert describe_minutes(0) == "0 minutes"
    assert describe_minutes(-120) == "minus 2 hours"
