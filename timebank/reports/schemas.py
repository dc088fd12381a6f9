"""The reports as the API gives them (JSON; CSV and SVG are drawn from the same models)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, PrivateAttr

Interval = Literal["week", "month", "quarter"]
View = Literal["full", "funder"]

COUNTS = (
    "approved exchanges by service date, net of reversals, as recorded by as_of "
    "(approved at or before as_of and not reversed by then)"
)


class Period(BaseModel):
    start: date
    end: date


class ReciprocityRow(BaseModel):
    participant_id: int
    display_name: str
    kind: str
    given_minutes: int
    received_minutes: int
    exchanges_given: int
    exchanges_received: int
    partners: int = Field(description="distinct counterparties")
    reciprocal: bool = Field(description="gave and received at least once")
    reciprocity: float = Field(description="min(given, received) / max(given, received)")


class ReciprocityReport(BaseModel):
    timebank: str
    period: Period
    as_of: datetime
    counts: str = COUNTS
    rows: list[ReciprocityRow]


METRICS = (
    "minutes",
    "hours",
    "exchanges",
    "participants",
    "active",
    "active_share",
    "new",
    "new_share",
    "reciprocal",
    "reciprocal_share",
    "ties",
    "two_way_ties",
    "two_way_tie_share",
    "first_exchanges",
    "median_days_to_first_exchange",
    "gifted_minutes",
    "gifted_hours",
    "gifted_to_pot_minutes",
    "gifted_to_pot_hours",
    "granted_minutes",
    "granted_hours",
    "sessions",
    "session_attendances",
    "session_minutes",
    "session_hours",
)

# The people each of the figures of gifts, grants and sessions rests on (counted, not shown).
RESTS_ON = ("gift_givers", "gift_recipients", "pot_givers", "grant_recipients", "session_people")


class Metrics(BaseModel):
    """One row of figures; in the funder view a suppressed figure is null and named in
    ``suppressed``."""

    minutes: int | None
    hours: float | None
    exchanges: int | None
    participants: int | None
    active: int | None
    active_share: float | None
    new: int | None
    new_share: float | None
    reciprocal: int | None
    reciprocal_share: float | None
    ties: int | None
    two_way_ties: int | None
    two_way_tie_share: float | None
    first_exchanges: int | None
    median_days_to_first_exchange: float | None
    gifted_minutes: int | None = Field(description="gifted from members to members")
    gifted_hours: float | None
    gifted_to_pot_minutes: int | None = Field(description="gifted from members to the pot")
    gifted_to_pot_hours: float | None
    granted_minutes: int | None = Field(description="granted from the pot to members")
    granted_hours: float | None
    sessions: int | None = Field(description="group sessions held (their legs counting)")
    session_attendances: int | None = Field(description="legs of those sessions")
    session_minutes: int | None = Field(description="minutes in those legs (part of minutes)")
    session_hours: float | None
    suppressed: list[str] = Field(default_factory=list)
    # What the figures of gifts, grants and sessions rest on (RESTS_ON): used to suppress
    # them, never shown nor documented as a field.
    _rests_on: dict[str, int] = PrivateAttr(default_factory=dict)

    @classmethod
    def of(cls, **figures: Any) -> Self:
        """A row from its figures and the people its cells rest on (``RESTS_ON``, kept
        beside the figures, carried by ``model_copy``)."""
        people = {name: int(figures.pop(name, 0) or 0) for name in RESTS_ON}
        row = cls(**figures)
        row._rests_on = people
        return row

    @property
    def gift_givers(self) -> int:
        return self._rests_on.get("gift_givers", 0)

    @property
    def gift_recipients(self) -> int:
        return self._rests_on.get("gift_recipients", 0)

    @property
    def pot_givers(self) -> int:
        return self._rests_on.get("pot_givers", 0)

    @property
    def grant_recipients(self) -> int:
        return self._rests_on.get("grant_recipients", 0)

    @property
    def session_people(self) -> int:
        return self._rests_on.get("session_people", 0)


class Bucket(Metrics):
    start: date
    end: date


class CategoryRow(BaseModel):
    category: str
    name: str
    minutes: int | None
    hours: float | None
    exchanges: int | None
    people: int | None
    suppressed: list[str] = Field(default_factory=list)


class FlowRow(BaseModel):
    giver_kind: str
    receiver_kind: str
    minutes: int | None
    hours: float | None
    exchanges: int | None
    people: int | None
    suppressed: list[str] = Field(default_factory=list)


class ContributionReport(BaseModel):
    timebank: str
    timebank_name: str = Field(description="the timebank's name as it is now, for titles")
    period: Period
    as_of: datetime
    interval: Interval
    view: View
    min_cell: int | None = Field(description="smallest number of people a shown cell rests on")
    counts: str = COUNTS
    totals: Metrics
    series: list[Bucket]
    categories: list[CategoryRow]
    flows: list[FlowRow]
