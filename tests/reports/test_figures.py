"""Every figure of the reciprocity and contribution reports against an independent computation
in plain Python over the same random ledger (Hypothesis), on real PostgreSQL.

Each example builds a fresh timebank: participants of every kind with random ``joined_on``
dates; exchanges with random service dates over about 200 days, minutes and categories, logged
by an admin through the real exchanges service (approved at once under an 'automatic' policy,
or left awaiting approval under a 'coordinator' one and approved, rejected or reversed later);
some participants enrolled late. A moment T is read from the database clock in the middle of
the history and the model is snapshotted there. The reports as of T, and as of now, must equal
what the definitions in ``timebank/reports/__init__.py`` give over the snapshot, field by
field; group sessions (their legs exchanges like any other), gifts between members and to the
pot, grants from the pot and opening balances are mixed in, and only the legs may move a
reciprocity figure; asked again with the same T after everything else has happened they
must be identical.
The funder view must carry no ids or names, and its primary suppression withhold exactly the
cells the model says (complementary suppression: test_disclosure.py).

The service is async and ``@given`` is sync, so the test drives it on an event loop and engine
of its own (as tests/property/test_ledger_machine.py does).
"""

from __future__ import annotations

import asyncio
import statistics
from collections import defaultdict
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import unique_slug
from tests.people import make_person
from tests.reports.sessions import approve_session, log_session, reverse_session
from timebank.auth.schemas import Principal, TimebankAccess
from timebank.db.engine import sqlalchemy_url
from timebank.errors import TimebankError
from timebank.exchanges.schemas import ExchangeCreate
from timebank.exchanges.service import Exchanges
from timebank.ledger import Ledger
from timebank.participants.schemas import DEFAULT_CATEGORIES, TimebankPolicy
from timebank.participants.service import Participants
from timebank.reports.audit import CHECKS, aggregate_differences
from timebank.reports.queue import catch_up
from timebank.reports.release import funder_report
from timebank.reports.schemas import (
    COUNTS,
    METRICS,
    ContributionReport,
    Metrics,
    ReciprocityReport,
)
from timebank.reports.service import Reports
from timebank.settings import Settings

T = TypeVar("T")

KINDS = ("member", "professional", "organisation")
CATEGORIES = tuple(DEFAULT_CATEGORIES)
INTERVALS = ("week", "month", "quarter")
WINDOW_DAYS = 200  # service dates fall within this many days before today
MAX_PARTICIPANTS = 12
MAX_EXCHANGE = 1440

# Floats: hours are minutes / 60 to 2 decimals, shares and reciprocity to 4 (either way of
# rounding a half is accepted); a median of whole days is exact (n or n.5).
DECIMALS = {
    "hours": 2,
    "gifted_hours": 2,
    "gifted_to_pot_hours": 2,
    "granted_hours": 2,
    "session_hours": 2,
    "active_share": 4,
    "new_share": 4,
    "reciprocal_share": 4,
    "two_way_tie_share": 4,
    "reciprocity": 4,
}
EXACT_FLOATS = ("median_days_to_first_exchange",)
ROW_FIGURES = ("minutes", "hours", "exchanges", "people")
KIND_FIGURES = (
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

EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------------------------------------
# The event loop, engine and services the examples drive (one set for the whole module).
# ---------------------------------------------------------------------------------------------


@dataclass
class Runtime:
    loop: asyncio.AbstractEventLoop
    engine: AsyncEngine
    participants: Participants
    exchanges: Exchanges
    ledger: Ledger
    admin: Principal

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def reports_runtime(database_url: str) -> Iterator[Runtime]:
    loop = asyncio.new_event_loop()
    engine = create_async_engine(sqlalchemy_url(database_url), pool_size=3, max_overflow=2)
    try:
        admin = loop.run_until_complete(make_person(engine, "report-admin", is_admin=True))
        principal = Principal(user_id=admin.user_id, email=admin.email, is_admin=True, token_id=0)
        yield Runtime(
            loop, engine, Participants(engine), Exchanges(engine), Ledger(engine), principal
        )
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()


# ---------------------------------------------------------------------------------------------
# Plans: what one example does, drawn by Hypothesis (indices are resolved modulo what exists).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    mode: str  # the approval mode at the start ('automatic' approves as it logs)
    people: tuple[tuple[str, int], ...]  # (kind, days before today it joined)
    before: tuple[tuple[Any, ...], ...]  # operations before T
    after: tuple[tuple[Any, ...], ...]  # operations after T
    start_days_ago: int  # the period starts this many days before today
    length_days: int  # and lasts this many days (possibly past today)
    interval: str
    min_cell: int
    whole_months: bool = False  # snap the period to whole calendar months


def _person() -> st.SearchStrategy[tuple[str, int]]:
    return st.tuples(st.sampled_from(KINDS), st.integers(0, 2 * WINDOW_DAYS))


_log = st.tuples(
    st.just("log"),
    st.integers(0, 50),  # giver
    st.integers(0, 50),  # receiver
    st.integers(1, MAX_EXCHANGE),
    st.integers(0, WINDOW_DAYS),  # days before today it was given
    st.sampled_from(CATEGORIES),
)
_session = st.tuples(
    st.just("session"),
    st.integers(0, 50),  # host
    st.lists(st.integers(0, 50), min_size=1, max_size=5),  # attendees
    st.integers(1, MAX_EXCHANGE),  # minutes of each leg
    st.integers(0, WINDOW_DAYS),
    st.sampled_from(CATEGORIES),
    st.sampled_from(("giver", "receiver")),
)
_approve = st.tuples(st.just("approve"), st.integers(0, 50))
_reverse = st.tuples(st.just("reverse"), st.integers(0, 50))
_strategies: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "log": _log,
    "approve": _approve,
    "reject": st.tuples(st.just("reject"), st.integers(0, 50)),
    "reverse": _reverse,
    "mode": st.tuples(st.just("mode"), st.sampled_from(("automatic", "coordinator"))),
    "enrol": st.tuples(st.just("enrol"), _person()),
    "session": _session,
    "approve session": st.tuples(st.just("approve session"), st.integers(0, 50)),
    "reverse session": st.tuples(st.just("reverse session"), st.integers(0, 50)),
    # A gift to a member (recipient index) or to the pot (None), or a grant from the pot.
    "gift": st.tuples(
        st.just("gift"),
        st.integers(0, 50),
        st.one_of(st.none(), st.integers(0, 50)),
        st.integers(1, 600),
    ),
    "grant": st.tuples(st.just("grant"), st.integers(0, 50), st.integers(1, 600)),
    "opening": st.tuples(st.just("opening"), st.integers(0, 50), st.integers(-300, 300)),
    # The background applier's turn: the report aggregates catch up with their queue.
    "catch up": st.tuples(st.just("catch up")),
}
# Weighted: mostly logging, then approving; one_of would not weigh repeated alternatives.
_WEIGHTS = (
    ("log",) * 10
    + ("approve",) * 4
    + (
        "reject",
        "reverse",
        "reverse",
        "mode",
        "enrol",
        "catch up",
        "catch up",
        "session",
        "session",
        "session",
        "approve session",
        "approve session",
        "reverse session",
        "gift",
        "gift",
        "grant",
        "opening",
    )
)
_operation = st.sampled_from(_WEIGHTS).flatmap(_strategies.__getitem__)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    # Sizes drawn first, as plain lists stay near their minimum size.
    before = [draw(_operation) for _ in range(draw(st.integers(10, 30)))]
    after = [draw(_operation) for _ in range(draw(st.integers(4, 18)))]
    # After T, at least one reversal and one approval (of whatever qualifies by then).
    for forced in (_reverse, _approve):
        after.insert(draw(st.integers(0, len(after))), draw(forced))
    return Plan(
        mode=draw(st.sampled_from(("automatic", "coordinator"))),
        people=tuple(draw(_person()) for _ in range(draw(st.integers(4, 10)))),
        before=tuple(before),
        after=tuple(after),
        start_days_ago=draw(st.integers(0, WINDOW_DAYS + 20)),
        whole_months=draw(st.booleans()),
        length_days=draw(st.one_of(st.integers(0, 40), st.integers(40, WINDOW_DAYS + 40))),
        interval=draw(st.sampled_from(INTERVALS)),
        min_cell=draw(st.integers(1, 6)),
    )


# ---------------------------------------------------------------------------------------------
# The plain model: who is enrolled and every exchange with its state, snapshotted at T.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: int
    kind: str
    name: str
    joined_on: date


@dataclass(frozen=True)
class Exchange:
    id: int
    giver: int
    receiver: int
    minutes: int
    service_date: date
    category: str
    state: str  # awaiting_approval, approved, rejected or reversed
    group: int | None = None  # the group session it is a leg of


@dataclass(frozen=True)
class Gift:
    kind: str  # 'member' (to a member), 'pot' (to the pot) or 'grant' (from the pot)
    giver: int | None
    recipient: int | None
    minutes: int
    day: date  # the UTC date it was made


@dataclass(frozen=True)
class Snapshot:
    people: tuple[Person, ...]
    exchanges: tuple[Exchange, ...]
    gifts: tuple[Gift, ...] = ()

    def counted(self) -> list[Exchange]:
        """Approved and not reversed: what a report as of this moment counts."""
        return [e for e in self.exchanges if e.state == "approved"]

    def person(self, participant_id: int) -> Person:
        return next(p for p in self.people if p.id == participant_id)


@dataclass
class Model:
    people: list[Person] = field(default_factory=list)
    exchanges: dict[int, Exchange] = field(default_factory=dict)
    gifts: list[Gift] = field(default_factory=list)
    openings: set[int] = field(default_factory=set)

    def snapshot(self) -> Snapshot:
        return Snapshot(tuple(self.people), tuple(self.exchanges.values()), tuple(self.gifts))

    def in_state(self, state: str) -> list[Exchange]:
        """Single exchanges (not legs of a session) in ``state``."""
        return sorted(
            (e for e in self.exchanges.values() if e.state == state and e.group is None),
            key=lambda e: e.id,
        )

    def sessions_in_state(self, state: str) -> list[int]:
        return sorted(
            {e.group for e in self.exchanges.values() if e.group is not None and e.state == state}
        )


# ---------------------------------------------------------------------------------------------
# The definitions (timebank/reports/__init__.py), computed over a snapshot.
# ---------------------------------------------------------------------------------------------


def share(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def expected_reciprocity(snap: Snapshot, start: date, end: date) -> dict[int, dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {
        p.id: {
            "participant_id": p.id,
            "display_name": p.name,
            "kind": p.kind,
            "given_minutes": 0,
            "received_minutes": 0,
            "exchanges_given": 0,
            "exchanges_received": 0,
        }
        for p in snap.people
    }
    partners: dict[int, set[int]] = defaultdict(set)
    for e in snap.counted():
        if start <= e.service_date <= end:
            rows[e.giver]["given_minutes"] += e.minutes
            rows[e.giver]["exchanges_given"] += 1
            rows[e.receiver]["received_minutes"] += e.minutes
            rows[e.receiver]["exchanges_received"] += 1
            partners[e.giver].add(e.receiver)
            partners[e.receiver].add(e.giver)
    for pid, row in rows.items():
        given, received = row["given_minutes"], row["received_minutes"]
        row["partners"] = len(partners[pid])
        row["reciprocal"] = row["exchanges_given"] > 0 and row["exchanges_received"] > 0
        row["reciprocity"] = share(min(given, received), max(given, received))
    return rows


def first_exchange_dates(snap: Snapshot) -> dict[int, date]:
    """Each participant's first counted exchange ever (any service date, not only the period)."""
    first: dict[int, date] = {}
    for e in snap.counted():
        for pid in (e.giver, e.receiver):
            if pid not in first or e.service_date < first[pid]:
                first[pid] = e.service_date
    return first


def expected_metrics(snap: Snapshot, first: date, last: date) -> dict[str, Any]:
    """One row of figures over service dates first..last (a bucket or the whole period)."""
    exchanges = [e for e in snap.counted() if first <= e.service_date <= last]
    minutes = sum(e.minutes for e in exchanges)
    participants = sum(1 for p in snap.people if p.joined_on <= last)
    new = sum(1 for p in snap.people if first <= p.joined_on <= last)
    givers = {e.giver for e in exchanges}
    receivers = {e.receiver for e in exchanges}
    active = len(givers | receivers)
    reciprocal = len(givers & receivers)
    directed = {(e.giver, e.receiver) for e in exchanges}
    ties = {frozenset(pair) for pair in directed}
    two_way = {tie for tie in ties if all((a, b) in directed for a in tie for b in tie if a != b)}
    firsts = {pid: d for pid, d in first_exchange_dates(snap).items() if first <= d <= last}
    days = [max(0, (d - snap.person(pid).joined_on).days) for pid, d in firsts.items()]
    return {
        "minutes": minutes,
        "hours": minutes / 60,
        "exchanges": len(exchanges),
        "participants": participants,
        "active": active,
        "active_share": share(active, participants),
        "new": new,
        "new_share": share(new, participants),
        "reciprocal": reciprocal,
        "reciprocal_share": share(reciprocal, active),
        "ties": len(ties),
        "two_way_ties": len(two_way),
        "two_way_tie_share": share(len(two_way), len(ties)),
        "first_exchanges": len(firsts),
        "median_days_to_first_exchange": float(statistics.median(days)) if days else None,
        **expected_kinds(snap, first, last),
        "suppressed": set(),
    }


def expected_kinds(snap: Snapshot, first: date, last: date) -> dict[str, Any]:
    """Gifts, grants and group sessions over days first..last, and the people each rests on
    (compared too, though never shown)."""
    gifts = [g for g in snap.gifts if first <= g.day <= last]
    figures: dict[str, Any] = {}
    for kind, name in (("member", "gifted"), ("pot", "gifted_to_pot"), ("grant", "granted")):
        minutes = sum(g.minutes for g in gifts if g.kind == kind)
        figures |= {f"{name}_minutes": minutes, f"{name}_hours": minutes / 60}
    figures["gift_givers"] = len({g.giver for g in gifts if g.kind == "member"})
    figures["gift_recipients"] = len({g.recipient for g in gifts if g.kind == "member"})
    figures["pot_givers"] = len({g.giver for g in gifts if g.kind == "pot"})
    figures["grant_recipients"] = len({g.recipient for g in gifts if g.kind == "grant"})
    legs = [e for e in snap.counted() if e.group is not None and first <= e.service_date <= last]
    minutes = sum(e.minutes for e in legs)
    figures |= {
        "sessions": len({e.group for e in legs}),
        "session_attendances": len(legs),
        "session_minutes": minutes,
        "session_hours": minutes / 60,
        "session_people": len({e.giver for e in legs} | {e.receiver for e in legs}),
    }
    return figures


def expected_rows(snap: Snapshot, start: date, end: date, key: str) -> dict[Any, dict[str, Any]]:
    """By category (key 'category') or by flow (key 'flow'): minutes, hours, exchanges and
    distinct people, over the whole period."""
    kinds = {p.id: p.kind for p in snap.people}
    groups: dict[Any, list[Exchange]] = defaultdict(list)
    for e in snap.counted():
        if start <= e.service_date <= end:
            group = e.category if key == "category" else (kinds[e.giver], kinds[e.receiver])
            groups[group].append(e)
    rows = {}
    for group, exchanges in groups.items():
        minutes = sum(e.minutes for e in exchanges)
        rows[group] = {
            "minutes": minutes,
            "hours": minutes / 60,
            "exchanges": len(exchanges),
            "people": len({e.giver for e in exchanges} | {e.receiver for e in exchanges}),
            "suppressed": set(),
        }
    return rows


def buckets(start: date, end: date, interval: str) -> list[tuple[date, date]]:
    """Calendar months, ISO weeks or quarters meeting the period, clipped to it."""
    if interval == "week":
        cursor = start - timedelta(days=start.weekday())
    elif interval == "month":
        cursor = start.replace(day=1)
    else:
        cursor = date(start.year, 3 * ((start.month - 1) // 3) + 1, 1)
    out = []
    while cursor <= end:
        if interval == "week":
            following = cursor + timedelta(days=7)
        else:
            months = cursor.month - 1 + (1 if interval == "month" else 3)
            following = date(cursor.year + months // 12, months % 12 + 1, 1)
        out.append((max(cursor, start), min(following - timedelta(days=1), end)))
        cursor = following
    return out


def funder_metrics(m: dict[str, Any], k: int) -> dict[str, Any]:
    """The funder view of a row of figures: which cells rest on fewer than k people."""
    hidden = {f for f in ("participants", "active", "new", "reciprocal", "first_exchanges")}
    hidden = {f for f in hidden if m[f] < k}
    if m["active"] < k:
        hidden |= {"minutes", "hours", "exchanges", "ties"}
    # Fewer than k people can form at most (k-1)(k-2)/2 ties among themselves.
    if m["active"] < k or m["two_way_ties"] <= max(k - 1, 0) * max(k - 2, 0) // 2:
        hidden |= {"two_way_ties", "two_way_tie_share"}
    if hidden & {"active", "participants"}:
        hidden.add("active_share")
    if hidden & {"new", "participants"}:
        hidden.add("new_share")
    if hidden & {"reciprocal", "active"}:
        hidden.add("reciprocal_share")
    if m["first_exchanges"] < k:
        hidden.add("median_days_to_first_exchange")
    # Gifts between members rest on their givers and recipients, to the pot on its givers,
    # grants on their recipients, sessions on everyone taking part in their legs.
    if min(m["gift_givers"], m["gift_recipients"]) < k:
        hidden |= {"gifted_minutes", "gifted_hours"}
    if m["pot_givers"] < k:
        hidden |= {"gifted_to_pot_minutes", "gifted_to_pot_hours"}
    if m["grant_recipients"] < k:
        hidden |= {"granted_minutes", "granted_hours"}
    if m["session_people"] < k:
        hidden |= {"sessions", "session_attendances", "session_minutes", "session_hours"}
    out = {f: None if f in hidden else m[f] for f in METRICS}
    out["suppressed"] = hidden
    return out


def primary_only(report: ContributionReport, k: int) -> ContributionReport:
    """The funder view's primary suppression of a full report (what a funder is shown only for
    whole closed periods as of their publication, with complementary suppressions on top:
    test_disclosure.py)."""
    return funder_report(("month", report.period.start), report, set(), k)


def funder_row(row: dict[str, Any], k: int) -> dict[str, Any]:
    if row["people"] >= k:
        return row
    return {**dict.fromkeys(ROW_FIGURES), "suppressed": set(ROW_FIGURES)}


# ---------------------------------------------------------------------------------------------
# Comparing a report with the model, collecting every difference.
# ---------------------------------------------------------------------------------------------


class Differences:
    def __init__(self, label: str) -> None:
        self.label = label
        self.found: list[str] = []

    def check(self, where: str, name: str, expected: Any, actual: Any) -> None:
        if name in DECIMALS and expected is not None and isinstance(actual, float):
            scaled = actual * 10 ** DECIMALS[name]
            ok = abs(actual - expected) <= 0.5 * 10 ** -DECIMALS[name] + 1e-12
            if ok and abs(scaled - round(scaled)) > 1e-6:
                ok, expected = False, f"{expected!r} rounded to {DECIMALS[name]} decimals"
        elif name in EXACT_FLOATS and expected is not None and isinstance(actual, float):
            ok = abs(actual - expected) <= 1e-9
        elif name == "suppressed":
            ok = set(actual) == set(expected) and len(actual) == len(set(actual))
            expected = sorted(expected, key=_metric_order)
        else:
            ok = expected == actual and type(expected) is type(actual)
        if not ok:
            self.found.append(f"{where}.{name}: expected {expected!r}, got {actual!r}")

    def fields(self, where: str, expected: dict[str, Any], actual: BaseModel) -> None:
        for name, value in expected.items():
            if not name.startswith("_"):
                self.check(where, name, value, getattr(actual, name))

    def raise_if_any(self) -> None:
        assert not self.found, f"{self.label}: {len(self.found)} difference(s)\n" + "\n".join(
            self.found[:60]
        )


def _metric_order(name: str) -> int:
    order = (*METRICS, *ROW_FIGURES)
    return order.index(name) if name in order else len(order)


def check_reciprocity(
    diff: Differences,
    report: ReciprocityReport,
    snap: Snapshot,
    *,
    slug: str,
    start: date,
    end: date,
    as_of: datetime | None,
    only: int | None = None,
) -> None:
    where = "reciprocity"
    diff.check(where, "timebank", slug, report.timebank)
    diff.check(where, "period", (start, end), (report.period.start, report.period.end))
    if as_of is not None:
        diff.check(where, "as_of", as_of, report.as_of)
    diff.check(where, "counts", COUNTS, report.counts)
    expected = expected_reciprocity(snap, start, end)
    if only is not None:
        expected = {only: expected[only]}
    actual = {row.participant_id: row for row in report.rows}
    if len(actual) != len(report.rows):
        diff.found.append(f"{where}.rows: a participant appears twice: {report.rows}")
    for pid in sorted(set(expected) | set(actual)):
        if pid not in actual:
            diff.found.append(f"{where}.rows[{pid}]: missing; expected {expected[pid]}")
        elif pid not in expected:
            diff.found.append(f"{where}.rows[{pid}]: not expected; got {actual[pid]}")
        else:
            diff.fields(f"{where}.rows[{pid}]", expected[pid], actual[pid])


def check_contribution(
    diff: Differences,
    report: ContributionReport,
    snap: Snapshot,
    *,
    slug: str,
    start: date,
    end: date,
    interval: str,
    as_of: datetime | None,
    funder_k: int | None,
) -> None:
    """``funder_k`` None: the full view; else the funder view with that min_cell."""
    where = "contribution"
    view = "full" if funder_k is None else "funder"
    diff.check(where, "timebank", slug, report.timebank)
    diff.check(where, "period", (start, end), (report.period.start, report.period.end))
    if as_of is not None:
        diff.check(where, "as_of", as_of, report.as_of)
    diff.check(where, "interval", interval, report.interval)
    diff.check(where, "view", view, report.view)
    diff.check(where, "min_cell", funder_k, report.min_cell)
    diff.check(where, "counts", COUNTS, report.counts)

    def metrics(first: date, last: date) -> dict[str, Any]:
        m = expected_metrics(snap, first, last)
        return m if funder_k is None else funder_metrics(m, funder_k)

    diff.fields(f"{where}.totals", metrics(start, end), report.totals)
    expected_buckets = buckets(start, end, interval)
    actual_buckets = [(b.start, b.end) for b in report.series]
    if actual_buckets != expected_buckets:
        diff.found.append(
            f"{where}.series: buckets expected {expected_buckets}, got {actual_buckets}"
        )
    for bucket in report.series:
        if (bucket.start, bucket.end) in expected_buckets:
            label = f"{where}.series[{bucket.start}..{bucket.end}]"
            diff.fields(label, metrics(bucket.start, bucket.end), bucket)

    for key, rows in (("category", report.categories), ("flow", report.flows)):
        expected = expected_rows(snap, start, end, key)
        if funder_k is not None:
            expected = {group: funder_row(row, funder_k) for group, row in expected.items()}
        actual: dict[Any, Any] = {}
        for row in rows:
            group = row.category if key == "category" else (row.giver_kind, row.receiver_kind)
            if group in actual:
                diff.found.append(f"{where}.{key}[{group}]: listed twice")
            actual[group] = row
        for group in sorted(set(expected) | set(actual), key=str):
            label = f"{where}.{key}[{group}]"
            if group not in actual:
                diff.found.append(f"{label}: missing; expected {expected[group]}")
            elif group not in expected:
                # A row for a group with nothing counted is tolerated if it is all zero
                # (or, for a funder, all suppressed).
                row = actual[group]
                figures = [getattr(row, f) for f in ROW_FIGURES]
                if any(figures) and any(f is not None for f in figures):
                    diff.found.append(f"{label}: nothing counted there, got {row}")
            else:
                diff.fields(label, expected[group], actual[group])
                if key == "category":
                    diff.check(label, "name", DEFAULT_CATEGORIES[group], actual[group].name)


def identifying_keys(value: Any, path: str = "$") -> list[str]:
    """Every key or string in a JSON document that names or identifies a participant."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("participant_id", "display_name", "participant_ids", "id", "ids"):
                found.append(f"{path}.{key}")
            found.extend(identifying_keys(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(identifying_keys(item, f"{path}[{index}]"))
    return found


def strings_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(strings_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(strings_in(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) else set()


def check_funder_json(diff: Differences, report: ContributionReport, snap: Snapshot) -> None:
    document = report.model_dump(mode="json")
    for path in identifying_keys(document):
        diff.found.append(f"funder json: identifying key at {path}")
    names = {p.name for p in snap.people} & strings_in(document)
    if names:
        diff.found.append(f"funder json: participant names {sorted(names)}")


# ---------------------------------------------------------------------------------------------
# One example: build the ledger through the real services, then ask the reports.
# ---------------------------------------------------------------------------------------------


class Example:
    def __init__(self, rt: Runtime, plan: Plan) -> None:
        self.rt = rt
        self.plan = plan
        self.model = Model()
        self.today = date.today()

    async def clock(self) -> datetime:
        async with self.rt.engine.connect() as conn:
            return (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()

    async def set_mode(self, mode: str) -> None:
        async with self.rt.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE timebanks SET approval_mode = :mode, confirmation_required = false"
                    " WHERE id = :id"
                ),
                {"mode": mode, "id": self.timebank.id},
            )
        self.mode = mode

    async def enrol(self, kind: str, joined_days_ago: int) -> None:
        if len(self.model.people) >= MAX_PARTICIPANTS:
            return
        name = f"Person {len(self.model.people) + 1} {kind}"
        joined_on = self.today - timedelta(days=joined_days_ago)
        record = await self.rt.participants.enrol(self.timebank, kind, name, joined_on=joined_on)
        assert record.joined_on == joined_on
        self.model.people.append(Person(record.id, kind, name, joined_on))

    async def apply(self, operation: tuple[Any, ...]) -> None:
        what = operation[0]
        if what == "catch up":
            await catch_up(self.rt.engine)
        elif what == "enrol":
            await self.enrol(*operation[1])
        elif what == "mode":
            await self.set_mode(operation[1])
        elif what == "session":
            await self.log_session(*operation[1:])
        elif what in ("approve session", "reverse session"):
            source = "awaiting_approval" if what == "approve session" else "approved"
            sessions = self.model.sessions_in_state(source)
            if not sessions:
                return
            session = sessions[operation[1] % len(sessions)]
            if what == "approve session":
                await approve_session(self.rt.engine, self.timebank.id, session)
            else:
                await reverse_session(self.rt.engine, self.timebank.id, session)
            target = "approved" if what == "approve session" else "reversed"
            for leg in [e for e in self.model.exchanges.values() if e.group == session]:
                self.model.exchanges[leg.id] = replace(leg, state=target)
        elif what in ("gift", "grant"):
            await self.gift(*operation)
        elif what == "opening":
            _, index, minutes = operation
            person = self.model.people[index % len(self.model.people)]
            if person.id not in self.model.openings:
                await self.rt.ledger.set_opening(
                    self.timebank.id, person.id, minutes, user_id=self.rt.admin.user_id
                )
                self.model.openings.add(person.id)
        elif what == "log":
            _, g, r, minutes, days_ago, category = operation
            people = self.model.people
            giver = people[g % len(people)]
            receiver = people[r % len(people)]
            if giver.id == receiver.id:
                receiver = people[(r + 1) % len(people)]
            result = await self.rt.exchanges.log(
                self.admin,
                ExchangeCreate(
                    giver_id=giver.id,
                    receiver_id=receiver.id,
                    minutes=minutes,
                    service_date=self.today - timedelta(days=days_ago),
                    category=category,
                ),
            )
            logged = result.exchange
            expected_state = "approved" if self.mode == "automatic" else "awaiting_approval"
            assert logged.state == expected_state, logged
            self.model.exchanges[logged.id] = Exchange(
                logged.id,
                giver.id,
                receiver.id,
                minutes,
                logged.service_date,
                category,
                logged.state,
            )
        else:
            _, index = operation
            source, action, reason = {
                "approve": ("awaiting_approval", "approve", None),
                "reject": ("awaiting_approval", "reject", "not as described"),
                "reverse": ("approved", "reverse", "logged in error"),
            }[what]
            candidates = self.model.in_state(source)
            if not candidates:
                return
            target = candidates[index % len(candidates)]
            decided = await self.rt.exchanges.decide(self.admin, target.id, action, reason)
            self.model.exchanges[target.id] = replace(target, state=decided.state)
            assert decided.state == {"approve": "approved", "reject": "rejected"}.get(
                action, "reversed"
            )

    async def log_session(
        self,
        host_index: int,
        attendee_indices: list[int],
        minutes: int,
        days_ago: int,
        category: str,
        host_side: str,
    ) -> None:
        """A group session through the tests' one writer of sessions, approved at once under
        an 'automatic' policy, else awaiting approval."""
        people = self.model.people
        host = people[host_index % len(people)]
        attendees = list(
            dict.fromkeys(
                people[i % len(people)].id
                for i in attendee_indices
                if people[i % len(people)].id != host.id
            )
        )
        if not attendees:
            return
        service_date = self.today - timedelta(days=days_ago)
        approved = self.mode == "automatic"
        session, legs = await log_session(
            self.rt.engine,
            self.timebank.id,
            host_id=host.id,
            attendees=attendees,
            minutes=[minutes] * len(attendees),
            service_date=service_date,
            category=category,
            host_side=host_side,
            approved=approved,
        )
        for leg, attendee in zip(legs, attendees, strict=True):
            giver, receiver = (host.id, attendee) if host_side == "giver" else (attendee, host.id)
            self.model.exchanges[leg] = Exchange(
                leg,
                giver,
                receiver,
                minutes,
                service_date,
                category,
                "approved" if approved else "awaiting_approval",
                group=session,
            )

    async def gift(self, what: str, *args: Any) -> None:
        """A gift to a member or to the pot, or a grant from the pot, through the ledger."""
        people = self.model.people
        if what == "grant":
            index, minutes = args
            giver, recipient = None, people[index % len(people)].id
            kind = "grant"
        else:
            index, to_index, minutes = args
            giver = people[index % len(people)].id
            recipient = None if to_index is None else people[to_index % len(people)].id
            if recipient == giver:
                recipient = people[(to_index + 1) % len(people)].id
            kind = "pot" if recipient is None else "member"
        written = await self.rt.ledger.gift(
            self.timebank.id, giver, recipient, minutes, user_id=self.rt.admin.user_id
        )
        made = written.record.created_at.astimezone(UTC).date()
        self.model.gifts.append(Gift(kind, giver, recipient, minutes, made))

    async def stamps_agree(self, moment: datetime, snap: Snapshot) -> None:
        """The harness itself: the database's approved_at / reversed_at and created_at say of
        T what the snapshot says (so the model's T is the database's T)."""
        async with self.rt.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT id, approved_at, reversed_at FROM exchanges WHERE timebank_id = :id"
                    ),
                    {"id": self.timebank.id},
                )
            ).all()
            enrolled = (
                await conn.execute(
                    text(
                        "SELECT id FROM participants WHERE timebank_id = :id AND created_at <= :t"
                    ),
                    {"id": self.timebank.id, "t": moment},
                )
            ).scalars()
            assert set(enrolled) == {p.id for p in snap.people}
            gifts = (
                await conn.execute(
                    text("SELECT count(*) FROM gifts WHERE timebank_id = :id AND created_at <= :t"),
                    {"id": self.timebank.id, "t": moment},
                )
            ).scalar_one()
            assert gifts == len(snap.gifts)
        counted = {e.id for e in snap.counted()}
        for exchange_id, approved_at, reversed_at in rows:
            by_stamps = (
                approved_at is not None
                and approved_at <= moment
                and (reversed_at is None or reversed_at > moment)
            )
            assert by_stamps == (exchange_id in counted), (exchange_id, approved_at, reversed_at)

    async def run(self) -> None:
        plan, rt = self.plan, self.rt
        policy = TimebankPolicy(
            default_floor_minutes=-100_000,
            default_ceiling_minutes=100_000,
            max_exchange_minutes=MAX_EXCHANGE,
        )
        self.timebank = await rt.participants.create_timebank(
            unique_slug("rep"), "Reports Timebank", policy
        )
        slug = self.timebank.slug
        self.admin = TimebankAccess(
            principal=rt.admin, timebank_id=self.timebank.id, timebank_slug=slug
        )
        someone = Principal(user_id=rt.admin.user_id, email="x", is_admin=False, token_id=0)
        funder = TimebankAccess(
            principal=someone,
            timebank_id=self.timebank.id,
            timebank_slug=slug,
            roles=frozenset({"funder"}),
        )
        full = Reports(rt.engine, Settings(report_min_cell=plan.min_cell, report_settle_seconds=0))
        await self.set_mode(plan.mode)
        for kind, joined in plan.people:
            await self.enrol(kind, joined)
        start = self.today - timedelta(days=plan.start_days_ago)
        end = start + timedelta(days=plan.length_days)
        if plan.whole_months:  # reports read other aggregates for whole months
            start = start.replace(day=1)
            end = (end.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        period = {"start": start, "end": end}

        for operation in plan.before:
            await self.apply(operation)
        moment = await self.clock()
        at_t = self.model.snapshot()

        diff = Differences(f"as of T={moment.isoformat()} (asked at once)")
        first = {
            "reciprocity": await full.reciprocity(self.admin, **period, as_of=moment),
            "contribution": await full.contribution(
                self.admin, **period, as_of=moment, interval=plan.interval
            ),
            "funder": primary_only(
                await full.contribution(self.admin, **period, as_of=moment, interval=plan.interval),
                plan.min_cell,
            ),
        }
        self.compare_all(diff, first, at_t, moment, slug, start, end)
        diff.raise_if_any()

        for operation in plan.after:
            await self.apply(operation)
        await self.stamps_agree(moment, at_t)
        describe(at_t, self.model.snapshot(), first["funder"])

        # Same T, after later approvals, late backdated entries, rejections and reversals.
        again = {
            "reciprocity": await full.reciprocity(self.admin, **period, as_of=moment),
            "contribution": await full.contribution(
                self.admin, **period, as_of=moment, interval=plan.interval
            ),
            "funder": primary_only(
                await full.contribution(self.admin, **period, as_of=moment, interval=plan.interval),
                plan.min_cell,
            ),
        }
        diff = Differences(f"as of T={moment.isoformat()} (asked again after the rest)")
        self.compare_all(diff, again, at_t, moment, slug, start, end)
        for name, report in again.items():
            if report.model_dump() != first[name].model_dump():
                diff.found.append(f"{name}: the same T gave a different model_dump the second time")
        diff.raise_if_any()

        # As of now (as_of left out): everything that happened counts.
        now = self.model.snapshot()
        diff = Differences("as of now")
        before = await self.clock()
        reciprocity = await full.reciprocity(self.admin, **period)
        after = await self.clock()
        if not before <= reciprocity.as_of <= after:
            diff.found.append(f"reciprocity.as_of {reciprocity.as_of} not in [{before}, {after}]")
        check_reciprocity(diff, reciprocity, now, slug=slug, **period, as_of=None)
        for interval in INTERVALS:
            report = await full.contribution(self.admin, **period, interval=interval)
            check_contribution(
                diff, report, now, slug=slug, **period, interval=interval, as_of=None, funder_k=None
            )
        report = primary_only(await full.contribution(self.admin, **period), plan.min_cell)
        check_contribution(
            diff,
            report,
            now,
            slug=slug,
            **period,
            interval="month",
            as_of=None,
            funder_k=plan.min_cell,
        )
        check_funder_json(diff, report, now)

        # One participant: asked for by a coordinator, or a member asking for their own row.
        chosen = now.people[len(now.exchanges) % len(now.people)]
        one = await full.reciprocity(self.admin, **period, as_of=moment, participant_id=chosen.id)
        if chosen in at_t.people:
            check_reciprocity(diff, one, at_t, slug=slug, **period, as_of=moment, only=chosen.id)
        else:
            if one.rows:
                diff.found.append(f"reciprocity as of T for {chosen} enrolled after T: {one.rows}")
        member = TimebankAccess(
            principal=someone,
            timebank_id=self.timebank.id,
            timebank_slug=slug,
            roles=frozenset({"member"}),
            participant_id=chosen.id,
        )
        own = await full.reciprocity(member, **period)
        check_reciprocity(diff, own, now, slug=slug, **period, as_of=None, only=chosen.id)
        try:
            refused = await full.reciprocity(funder, **period)
        except TimebankError as error:
            if error.status_code not in (403, 404):
                diff.found.append(f"funder reciprocity: refused with {error.status_code}")
        else:
            diff.found.append(f"funder reciprocity: answered with {len(refused.rows)} rows")
        diff.raise_if_any()

        # Caught up, the aggregates equal a recount of the exchanges that count.
        await self.apply(("catch up",))
        async with rt.engine.connect() as conn:
            assert await aggregate_differences(conn, self.timebank.id) == dict.fromkeys(CHECKS, 0)

    def compare_all(
        self,
        diff: Differences,
        reports: dict[str, Any],
        snap: Snapshot,
        moment: datetime,
        slug: str,
        start: date,
        end: date,
    ) -> None:
        period = {"start": start, "end": end}
        check_reciprocity(diff, reports["reciprocity"], snap, slug=slug, **period, as_of=moment)
        check_contribution(
            diff,
            reports["contribution"],
            snap,
            slug=slug,
            **period,
            interval=self.plan.interval,
            as_of=moment,
            funder_k=None,
        )
        check_contribution(
            diff,
            reports["funder"],
            snap,
            slug=slug,
            **period,
            interval=self.plan.interval,
            as_of=moment,
            funder_k=self.plan.min_cell,
        )
        check_funder_json(diff, reports["funder"], snap)


def describe(at_t: Snapshot, now: Snapshot, funder_report: ContributionReport) -> None:
    """What the example exercised (shown by --hypothesis-show-statistics)."""
    then = {e.id: e.state for e in at_t.exchanges}
    counted_then = {e.id for e in at_t.counted()}
    event(f"exchanges counted at T: {min(len(counted_then) // 5 * 5, 20)}+")
    for e in now.exchanges:
        if e.state == "reversed" and e.id in counted_then:
            event("an exchange counted at T was reversed after T")
        if e.state in ("approved", "reversed") and then.get(e.id) == "awaiting_approval":
            event("an exchange logged before T was approved after T")
        if e.state == "approved" and e.id not in then:
            event("an exchange logged after T counts now")
    if len(now.people) > len(at_t.people):
        event("someone enrolled after T")
    if any(e.group is not None for e in at_t.counted()):
        event("a group session counted at T")
    if any(e.group is not None and e.state == "reversed" for e in now.exchanges):
        event("a group session was reversed")
    if at_t.gifts:
        event("gifts made before T")
    if len(now.gifts) > len(at_t.gifts):
        event("gifts made after T")
    if any(funder_report.totals.suppressed):
        event("the funder view suppressed a total")
    shown = [f for f in METRICS if getattr(funder_report.totals, f) is not None]
    if "minutes" in shown:
        event("the funder view showed the total minutes")
    for figure in ("gifted_minutes", "gifted_to_pot_minutes", "granted_minutes", "sessions"):
        if figure in shown:
            event(f"the funder view showed {figure}")


@EXAMPLES
@given(plan=plans())
def test_reports_equal_the_model(reports_runtime: Runtime, plan: Plan) -> None:
    reports_runtime.run(Example(reports_runtime, plan).run())


# ---------------------------------------------------------------------------------------------
# The model itself, on hand-made cases (so a wrong expectation is not mistaken for a bug).
# ---------------------------------------------------------------------------------------------


def test_buckets_are_calendar_periods_clipped_to_the_period():
    assert buckets(date(2025, 1, 15), date(2025, 3, 2), "month") == [
        (date(2025, 1, 15), date(2025, 1, 31)),
        (date(2025, 2, 1), date(2025, 2, 28)),
        (date(2025, 3, 1), date(2025, 3, 2)),
    ]
    assert buckets(date(2025, 1, 1), date(2025, 1, 13), "week") == [
        (date(2025, 1, 1), date(2025, 1, 5)),  # Wed..Sun of ISO week 1
        (date(2025, 1, 6), date(2025, 1, 12)),
        (date(2025, 1, 13), date(2025, 1, 13)),
    ]
    assert buckets(date(2024, 11, 20), date(2025, 4, 1), "quarter") == [
        (date(2024, 11, 20), date(2024, 12, 31)),
        (date(2025, 1, 1), date(2025, 3, 31)),
        (date(2025, 4, 1), date(2025, 4, 1)),
    ]
    assert buckets(date(2025, 5, 5), date(2025, 5, 5), "month") == [
        (date(2025, 5, 5), date(2025, 5, 5))
    ]


def test_model_figures_on_a_hand_made_ledger():
    d = date(2025, 3, 10)
    people = (
        Person(1, "member", "A", date(2025, 1, 1)),
        Person(2, "member", "B", date(2025, 3, 1)),
        Person(3, "organisation", "C", date(2025, 3, 20)),  # exchanges before it joined
        Person(4, "professional", "D", date(2025, 4, 1)),  # joins after the period
    )
    exchanges = (
        Exchange(1, 1, 2, 60, d, "gardening", "approved"),
        Exchange(2, 2, 1, 30, d, "gardening", "approved"),
        Exchange(3, 1, 3, 90, d, "lifts", "approved"),
        Exchange(4, 3, 2, 45, d, "lifts", "reversed"),
        Exchange(5, 2, 3, 15, date(2025, 2, 1), "other", "approved"),  # before the period
    )
    snap = Snapshot(people, exchanges)
    m = expected_metrics(snap, date(2025, 3, 1), date(2025, 3, 31))
    assert (m["minutes"], m["exchanges"], m["participants"], m["active"]) == (180, 3, 3, 3)
    assert (m["new"], m["reciprocal"], m["ties"], m["two_way_ties"]) == (2, 2, 2, 1)
    # First exchanges ever: A on 10 March (68 days after joining); B and C on 1 February
    # (outside March), C's clamped to 0 days.
    assert (m["first_exchanges"], m["median_days_to_first_exchange"]) == (1, 68.0)
    rows = expected_reciprocity(snap, date(2025, 3, 1), date(2025, 3, 31))
    assert rows[1]["given_minutes"] == 150 and rows[1]["received_minutes"] == 30
    assert rows[1]["partners"] == 2 and rows[1]["reciprocity"] == 0.2
    assert rows[3]["reciprocal"] is False and rows[4]["reciprocity"] == 0.0
    hidden = funder_metrics(m, 3)["suppressed"]
    assert hidden == {
        "new",
        "new_share",
        "reciprocal",
        "reciprocal_share",
        "two_way_ties",
        "two_way_tie_share",
        "first_exchanges",
        "median_days_to_first_exchange",
        *KIND_FIGURES,  # no gift, grant or session: resting on nobody
    }
    flows = expected_rows(snap, date(2025, 3, 1), date(2025, 3, 31), "flow")
    assert flows[("member", "member")]["people"] == 2
    assert flows[("member", "organisation")]["minutes"] == 90


def test_model_counts_group_legs_as_exchanges_and_gifts_nowhere_but_their_own_figures():
    d = date(2025, 3, 10)
    people = tuple(Person(n, "member", f"P{n}", date(2025, 1, 1)) for n in range(1, 6))
    # Session 10: host 1 gives to 2, 3 and 4; session 11 (reversed) 5 gives to 1; and a plain
    # exchange 2 -> 1.
    exchanges = (
        Exchange(1, 1, 2, 60, d, "gardening", "approved", group=10),
        Exchange(2, 1, 3, 60, d, "gardening", "approved", group=10),
        Exchange(3, 1, 4, 60, d, "gardening", "approved", group=10),
        Exchange(4, 5, 1, 30, d, "lifts", "reversed", group=11),
        Exchange(5, 2, 1, 15, d, "lifts", "approved"),
    )
    gifts = (
        Gift("member", 5, 2, 20, d),
        Gift("member", 4, 2, 25, d),
        Gift("pot", 5, None, 40, d),
        Gift("grant", None, 3, 50, d),
        Gift("grant", None, 3, 10, date(2025, 4, 1)),  # after the period
    )
    snap = Snapshot(people, exchanges, gifts)
    m = expected_metrics(snap, date(2025, 3, 1), date(2025, 3, 31))
    assert (m["minutes"], m["exchanges"], m["active"], m["reciprocal"]) == (195, 4, 4, 2)
    assert (m["ties"], m["two_way_ties"], m["first_exchanges"]) == (3, 1, 4)  # 5 gave no leg
    assert (m["sessions"], m["session_attendances"], m["session_minutes"]) == (1, 3, 180)
    assert m["session_people"] == 4
    assert (m["gifted_minutes"], m["gifted_to_pot_minutes"], m["granted_minutes"]) == (45, 40, 50)
    assert (m["gift_givers"], m["gift_recipients"], m["pot_givers"], m["grant_recipients"]) == (
        2,
        1,
        1,
        1,
    )
    rows = expected_reciprocity(snap, date(2025, 3, 1), date(2025, 3, 31))
    assert rows[5]["given_minutes"] == 0 and rows[5]["partners"] == 0  # gifts are no exchange
    assert rows[1]["given_minutes"] == 180 and rows[1]["partners"] == 3
    hidden = funder_metrics(m, 2)["suppressed"]
    # Gifts between members rest on their one recipient, to the pot on one giver, grants on
    # one recipient: withheld at k = 2; sessions rest on four people: shown.
    assert {"gifted_minutes", "gifted_to_pot_minutes", "granted_minutes"} <= hidden
    assert not hidden & {"sessions", "session_attendances", "session_minutes", "session_hours"}


def test_every_metric_is_a_field_of_a_row():
    assert {*METRICS, "suppressed"} <= set(Metrics.model_fields)


async def test_as_of_defaults_to_a_few_seconds_ago_and_is_never_later(engine, participants):
    """With the default settle time, what was approved a moment ago does not count yet, and
    an as_of in the future is brought back to now minus the settle time."""
    settle = 5.0
    reports = Reports(engine, Settings(report_min_cell=1, report_settle_seconds=settle))
    admin_person = await make_person(engine, "settle-admin", is_admin=True)
    principal = Principal(
        user_id=admin_person.user_id, email=admin_person.email, is_admin=True, token_id=0
    )
    timebank = await participants.create_timebank(
        unique_slug("settle"),
        "Settle Timebank",
        TimebankPolicy(
            default_floor_minutes=-100_000, default_ceiling_minutes=100_000, max_exchange_minutes=60
        ),
    )
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE timebanks SET approval_mode = 'automatic', confirmation_required = false"
                " WHERE id = :id"
            ),
            {"id": timebank.id},
        )
    access = TimebankAccess(
        principal=principal, timebank_id=timebank.id, timebank_slug=timebank.slug
    )
    today = date.today()
    a = await participants.enrol(timebank, "member", "Early A", joined_on=today)
    b = await participants.enrol(timebank, "member", "Early B", joined_on=today)
    logged = await Exchanges(engine).log(
        access,
        ExchangeCreate(
            giver_id=a.id, receiver_id=b.id, minutes=45, service_date=today, category="other"
        ),
    )
    assert logged.exchange.state == "approved"

    async def clock() -> datetime:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()

    before = await clock()
    report = await reports.contribution(access, start=today, end=today)
    after = await clock()
    lag = timedelta(seconds=settle)
    assert before - lag <= report.as_of <= after - lag
    # Enrolled and approved less than the settle time ago: nobody and nothing counts yet.
    assert (report.totals.participants, report.totals.exchanges, report.totals.minutes) == (0, 0, 0)

    future = after + timedelta(hours=1)
    report = await reports.contribution(access, start=today, end=today, as_of=future)
    assert report.as_of <= await clock() - lag
    reciprocity = await reports.reciprocity(access, start=today, end=today, as_of=future)
    assert reciprocity.as_of <= await clock() - lag
    assert reciprocity.rows == []
