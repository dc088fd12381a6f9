"""A funder cannot work out a withheld figure from what they are shown.

The attacks of the security review, through HTTP as a funder: the total minus the shown
categories, the total minus the shown flows, a period's total minus its shown months, two
periods differenced, and bisecting ``as_of``. Then the property: over random timebanks, for
everything a funder can see in one publication (every month, quarter and year, their totals,
categories, flows and series, and the enrolment months), no withheld non-zero cell can be
recomputed. The checker here is independent of the service's: it reads the published reports
as a funder would, writes down every linear relation between their figures, and solves them
exactly (fractions) for the withheld ones."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.exchanges.conftest import set_policy
from tests.people import make_person
from tests.reports.sessions import log_session
from tests.web.pages import as_person, text_of
from timebank.reports.csv_export import literal
from timebank.reports.queue import catch_up
from timebank.reports.release import (
    Release,
    funder_report,
    last_day,
    month_after,
    months_of,
    protect_release,
    release_at,
    volume_table,
    year_periods,
)
from timebank.reports.schemas import (
    Bucket,
    CategoryRow,
    ContributionReport,
    FlowRow,
    Metrics,
    Period,
)

K = 5
# The sums of gifts, grants and group sessions a funder sees by period and month.
KIND_SUMS = (
    "gifted_minutes",
    "gifted_to_pot_minutes",
    "granted_minutes",
    "sessions",
    "session_attendances",
    "session_minutes",
)
PUBLISH_AFTER = timedelta(days=7)  # the default of TIMEBANK_REPORT_PUBLISH_AFTER_DAYS

# ---------------------------------------------------------------------------------------------
# The checker: what a funder can solve for.
# ---------------------------------------------------------------------------------------------

Var = tuple[Any, ...]


class Knowledge:
    """Every figure a funder saw (by variable), the ones withheld wherever they appeared, and
    the linear relations between them (each a mapping variable -> coefficient, summing to 0)."""

    def __init__(self) -> None:
        self.shown: dict[Var, int] = {}
        self.withheld: set[Var] = set()
        self.relations: list[dict[Var, int]] = []

    def see(self, var: Var, value: int | None) -> None:
        if value is None:
            self.withheld.add(var)
        else:
            self.shown[var] = value

    def relate(self, total: Var, parts: Iterable[Var]) -> None:
        row: dict[Var, int] = {total: 1}
        for part in parts:
            row[part] = row.get(part, 0) - 1
        self.relations.append(row)

    def unknown(self) -> set[Var]:
        return self.withheld - set(self.shown)

    def solvable(self) -> set[Var]:
        """Unknowns whose unit vector is in the span of the relations over the unknowns."""
        unknown = self.unknown()
        basis: list[dict[Var, Fraction]] = []  # reduced rows, each with a pivot
        pivots: list[Var] = []
        for relation in self.relations:
            row = {v: Fraction(c) for v, c in relation.items() if v in unknown and c}
            row = _reduce(row, basis, pivots)
            if row:
                pivot = min(row, key=repr)
                scale = row[pivot]
                row = {v: c / scale for v, c in row.items()}
                for other in basis:  # keep the basis fully reduced
                    if pivot in other:
                        factor = other[pivot]
                        for v, c in row.items():
                            other[v] = other.get(v, Fraction(0)) - factor * c
                            if other[v] == 0:
                                del other[v]
                basis.append(row)
                pivots.append(pivot)
        return {v for v in unknown if not _reduce({v: Fraction(1)}, basis, pivots)}


def _reduce(
    row: dict[Var, Fraction], basis: list[dict[Var, Fraction]], pivots: list[Var]
) -> dict[Var, Fraction]:
    row = dict(row)
    for pivot, base in zip(pivots, basis, strict=True):
        if pivot in row:
            factor = row[pivot]
            for v, c in base.items():
                row[v] = row.get(v, Fraction(0)) - factor * c
                if row[v] == 0:
                    del row[v]
    return row


def read_reports(reports: Iterable[Mapping[str, Any]]) -> Knowledge:
    """What a funder learns from funder reports (as JSON) of whole months, quarters and years:
    each figure by the period it is for, the same month's figures wherever they appear (its
    own report, a bucket of a longer one) being one variable."""
    known = Knowledge()
    by_period: dict[tuple[str, str], Mapping[str, Any]] = {}
    for report in reports:
        period = (report["period"]["start"], report["period"]["end"])
        by_period[period] = report
        totals, series = report["totals"], report["series"]
        for figure in ("minutes", "exchanges", "first_exchanges", "new", *KIND_SUMS):
            known.see((figure, period), totals[figure])
            months = []
            for bucket in series:
                month = (bucket["start"], bucket["end"])
                known.see((figure, month), bucket[figure])
                months.append((figure, month))
            if len(months) > 1:
                known.relate((figure, period), months)
        for bucket in series:
            known.see(("participants", bucket["end"]), bucket["participants"])
            known.see(("new", (bucket["start"], bucket["end"])), bucket["new"])
        known.see(("participants", report["period"]["end"]), totals["participants"])
        for figure in ("minutes", "exchanges"):
            for rows, label in (
                (report["categories"], lambda r: r["category"]),
                (report["flows"], lambda r: f"{r['giver_kind']}>{r['receiver_kind']}"),
            ):
                parts = []
                for row in rows:
                    var = (figure, period, label(row))
                    known.see(var, row[figure])
                    parts.append(var)
                known.relate((figure, period), parts)  # absent rows are 0
    # Nesting: a period is the sum of the shorter published periods that tile it, per
    # category and per flow too (a row absent from a period is 0 there).
    for start, end in by_period:
        inside = [p for p in by_period if p != (start, end) and start <= p[0] and p[1] <= end]
        for length in (1, 3):
            tiles = [p for p in inside if _months_between(*p) == length]
            if len(tiles) < 2 or sum(_months_between(*p) for p in tiles) != _months_between(
                start, end
            ):
                continue
            for figure in ("minutes", "exchanges"):
                labels = {v[2] for v in (*known.shown, *known.withheld) if len(v) == 3}
                for label in labels:
                    total = (figure, (start, end), label)
                    parts = [(figure, p, label) for p in tiles]
                    seen = {*known.shown, *known.withheld}
                    if total in seen or any(p in seen for p in parts):
                        known.relate(total, [p for p in parts if p in seen])
                        if total not in seen:
                            known.shown[total] = 0
    # Enrolment: participants at a month's end = at the previous month's end + new in it.
    ends = sorted({v[1] for v in (*known.shown, *known.withheld) if v[0] == "participants"})
    for end in ends:
        first = date.fromisoformat(end).replace(day=1)
        previous = (first - timedelta(days=1)).isoformat()
        if ("participants", previous) in {*known.shown, *known.withheld}:
            known.relate(
                ("participants", end),
                [("participants", previous), ("new", (first.isoformat(), end))],
            )
    return known


def _months_between(start: str, end: str) -> int:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return (last.year - first.year) * 12 + last.month - first.month + 1


def recovered(known: Knowledge, truth: Mapping[Var, int]) -> dict[Var, int]:
    """Withheld figures a funder can work out, with their true values (0 rests on nobody)."""
    return {v: truth[v] for v in known.solvable() if truth.get(v, 0) != 0}


def truth_of(reports: Iterable[Mapping[str, Any]]) -> dict[Var, int]:
    """Every variable's true value, read from full-view reports of the same periods."""
    known = read_reports(reports)
    return {**known.shown}


# ---------------------------------------------------------------------------------------------
# The attacks through HTTP.
# ---------------------------------------------------------------------------------------------


def latest_release() -> Release:
    return release_at(datetime.now(UTC) - timedelta(seconds=5), PUBLISH_AFTER)


def published_quarter() -> list[date]:
    """The months of the latest quarter that is published now."""
    through = latest_release().through
    end_month = through.month - through.month % 3 or 12
    year = through.year if through.month >= 3 else through.year - 1
    first = date(year, end_month - 2, 1)
    return [first, month_after(first), month_after(month_after(first))]


async def backdate(raw, timebank_id: int, moment: datetime) -> None:
    """Make the timebank's history older than the latest publication: its participants
    enrolled and its exchanges approved at ``moment`` (the service stamps both with the
    database's clock, and refuses to change an approval's stamp, so the triggers are set
    aside for this test's own rows)."""
    async with raw.transaction():
        await raw.execute("SET LOCAL session_replication_role = replica")
        await raw.execute(
            "UPDATE participants SET created_at = $2 WHERE timebank_id = $1", timebank_id, moment
        )
        await raw.execute(
            "UPDATE exchanges SET approved_at = $2 WHERE timebank_id = $1 AND approved_at IS NOT"
            " NULL",
            timebank_id,
            moment,
        )


@pytest.fixture
async def history(client, engine, raw, world):
    """The world's timebank, its last published quarter: seven members and an organisation;
    months one and two busy (everyone gives gardening to the next); in month three a single
    45-minute lift between two members, and in month one a single 45-minute lift from a
    member to the organisation. Everything approved before the publication."""
    await set_policy(
        engine, world.timebank.id, approval_mode="automatic", confirmation_required=False
    )
    extra = [
        await make_person(engine, f"m{n}", timebank=world.timebank, roles=("member",))
        for n in range(5)
    ]
    members = [world.member, world.other_member, *extra]
    charity = await make_person(
        engine, "charity", timebank=world.timebank, roles=("member",), kind="organisation"
    )
    months = published_quarter()

    async def log(giver, receiver, minutes: int, day: date, category: str) -> None:
        response = await client.post(
            f"/api/v1/timebanks/{world.timebank.slug}/exchanges",
            json={
                "giver_id": giver.participant_id,
                "receiver_id": receiver.participant_id,
                "minutes": minutes,
                "service_date": day.isoformat(),
                "category": category,
                "description": "help",
            },
            headers=world.coordinator.headers,
        )
        assert response.status_code == 201, response.text

    for month in months[:2]:
        for n, giver in enumerate(members):
            await log(
                giver, members[(n + 1) % 7], 60 + 15 * n, month + timedelta(days=n), "gardening"
            )
    await log(members[0], members[1], 45, months[2] + timedelta(days=3), "lifts")
    await log(members[2], charity, 45, months[0] + timedelta(days=9), "lifts")
    release = latest_release()
    await backdate(raw, world.timebank.id, datetime.combine(months[0], datetime.min.time(), UTC))
    return world, months, release


def contribution(world, first: date, last: date, **extra: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"from": first, "to": last, **extra}.items())
    return f"/api/v1/timebanks/{world.timebank.slug}/reports/contribution?{query}"


async def funder_get(client, world, first: date, last: date, **extra: str):
    return await client.get(contribution(world, first, last, **extra), headers=world.funder.headers)


def quarter_end(months: list[date]) -> date:
    return last_day(("month", months[2]))


async def test_total_minus_shown_categories_does_not_give_a_withheld_one(client, history):
    world, months, _ = history
    response = await funder_get(client, world, months[0], quarter_end(months))
    assert response.status_code == 200, response.text
    report = response.json()
    lifts = [row for row in report["categories"] if row["category"] == "lifts"]
    assert lifts and lifts[0]["minutes"] is None  # two lifts, three people: withheld
    shown = [row["minutes"] for row in report["categories"] if row["minutes"] is not None]
    total = report["totals"]["minutes"]
    assert total is None or len(shown) < len(report["categories"]) - 1, (total, shown)


async def test_total_minus_shown_flows_does_not_give_a_withheld_one(client, history):
    world, months, _ = history
    month = months[0]
    response = await funder_get(client, world, month, last_day(("month", month)))
    assert response.status_code == 200, response.text
    report = response.json()
    to_charity = [row for row in report["flows"] if row["receiver_kind"] == "organisation"]
    assert to_charity and to_charity[0]["minutes"] is None  # one exchange, two people
    withheld = [row for row in report["flows"] if row["minutes"] is None]
    assert report["totals"]["minutes"] is None or len(withheld) >= 2, report


async def test_a_period_minus_its_shown_months_does_not_give_a_withheld_month(client, history):
    world, months, _ = history
    response = await funder_get(client, world, months[0], quarter_end(months))
    report = response.json()
    third = report["series"][2]
    assert third["minutes"] is None  # two people in month three
    hidden = [bucket for bucket in report["series"] if bucket["minutes"] is None]
    assert report["totals"]["minutes"] is None or len(hidden) >= 2, report["series"]


async def test_two_periods_differenced_do_not_give_a_withheld_month(client, history):
    """The quarter minus its first two months (asked as one period, or one by one) would be
    the withheld third month: a funder gets only whole months, quarters and years, and they
    are protected together."""
    world, months, _ = history
    quarter = (await funder_get(client, world, months[0], quarter_end(months))).json()
    two_months = await funder_get(client, world, months[0], last_day(("month", months[1])))
    assert two_months.status_code == 422
    assert two_months.json()["errors"][0]["key"] == "from"
    answered = [quarter]
    for month in months:
        single = await funder_get(client, world, month, last_day(("month", month)))
        assert single.status_code == 200
        answered.append(single.json())
    full = [
        (
            await client.get(
                contribution(
                    world,
                    r["period"]["start"],
                    r["period"]["end"],
                    as_of=r["as_of"].replace("+", "%2B"),
                ),
                headers=world.coordinator.headers,
            )
        ).json()
        for r in answered
    ]
    known = read_reports(answered)
    assert known.unknown(), "the test's history should have withheld something"
    assert recovered(known, truth_of(full)) == {}


async def test_as_of_is_refused_to_a_funder_and_fixed_to_the_publication(client, history):
    """Bisecting as_of would date each approval: a funder's as_of is refused, and every
    answer counts as of the period's first publication, whenever it is asked."""
    world, months, release = history
    end = quarter_end(months)
    moment = (release.as_of - timedelta(days=1)).isoformat().replace("+", "%2B")
    refused = await funder_get(client, world, months[0], end, as_of=moment)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["key"] == "as_of"
    first = (await funder_get(client, world, months[0], end)).json()
    again = (await funder_get(client, world, months[0], end)).json()
    published = datetime.combine(month_after(end), datetime.min.time(), UTC) + PUBLISH_AFTER
    assert datetime.fromisoformat(first["as_of"]) == published <= release.as_of
    assert first == again
    # A coordinator's preview of the funder view follows the same rules.
    preview = await client.get(
        contribution(world, months[0], end, view="funder", as_of=moment),
        headers=world.coordinator.headers,
    )
    assert preview.status_code == 422


async def test_a_funder_gets_only_whole_closed_periods(client, history):
    world, months, release = history
    open_month = month_after(release.through)
    for first, last, field in (
        (months[0], months[0] + timedelta(days=9), "from"),  # part of a month
        (months[0] + timedelta(days=1), quarter_end(months), "from"),
        (open_month, last_day(("month", open_month)), "to"),  # not published yet
    ):
        response = await funder_get(client, world, first, last)
        assert response.status_code == 422, (first, last, response.text)
        assert response.json()["errors"][0]["key"] == field
    weekly = await funder_get(client, world, months[0], quarter_end(months), interval="week")
    assert weekly.status_code == 422 and weekly.json()["errors"][0]["key"] == "interval"
    default = await client.get(
        f"/api/v1/timebanks/{world.timebank.slug}/reports/contribution",
        headers=world.funder.headers,
    )
    assert default.status_code == 200
    assert default.json()["period"] == {
        "start": months[0].isoformat(),
        "end": quarter_end(months).isoformat(),
    }


async def test_nothing_withheld_is_recoverable_from_a_whole_published_year(client, history):
    """Through the database and HTTP: every month, quarter and the year a funder can ask for
    in the history's year, read together; nothing withheld can be worked out."""
    world, months, release = history
    year = months[0].year
    answered, full = [], []
    for key in year_periods(year, release.through):
        first, last = key[1], last_day(key)
        response = await funder_get(client, world, first, last)
        assert response.status_code == 200, (key, response.text)
        answered.append(response.json())
        coordinator = await client.get(
            contribution(world, first, last, as_of=response.json()["as_of"].replace("+", "%2B")),
            headers=world.coordinator.headers,
        )
        full.append(coordinator.json())
    known = read_reports(answered)
    assert known.unknown()
    assert recovered(known, truth_of(full)) == {}


async def test_each_publication_starts_from_what_the_earlier_ones_withheld(
    client, engine, raw, history
):
    """Through the database: a funder reads the published year and the publication is
    recorded, cell by cell, naming nobody; another worker, with nothing in memory, answers the
    same; the next month's publication, with new exchanges in its month, still withholds every
    cell the first withheld, and the two read together give nothing withheld away. A cell once
    withheld cannot be recorded as shown again."""
    import asyncpg

    from timebank.auth.schemas import Principal, TimebankAccess
    from timebank.reports.service import Reports
    from timebank.settings import Settings

    world, months, release = history
    timebank = world.timebank
    # Everyone joined at the start of the quarter, so that the months since show how many
    # people were enrolled.
    await raw.execute(
        "UPDATE participants SET joined_on = $2 WHERE timebank_id = $1", timebank.id, months[0]
    )
    keys = year_periods(months[0].year, release.through)
    first = []
    for key in keys:
        response = await funder_get(client, world, key[1], last_day(key))
        assert response.status_code == 200, (key, response.text)
        first.append(response.json())
    recorded = await raw.fetch(
        "SELECT figure, label, withheld, shown_value FROM published_cells WHERE timebank_id = $1",
        timebank.id,
    )
    assert any(row["withheld"] for row in recorded) and not all(r["withheld"] for r in recorded)
    kinds = ("member", "professional", "organisation")
    assert {row["label"] for row in recorded} <= {
        "",
        "gardening",
        "lifts",
        *(f"{giver}>{receiver}" for giver in kinds for receiver in kinds),
    }

    def access(user_id: int, roles: set[str], admin: bool = False) -> TimebankAccess:
        principal = Principal(user_id=user_id, email="x", is_admin=admin, token_id=0)
        return TimebankAccess(
            principal=principal,
            timebank_id=timebank.id,
            timebank_slug=timebank.slug,
            roles=frozenset(roles),
        )

    funder = access(world.funder.user_id, {"funder"})
    another_worker = Reports(engine, Settings(report_settle_seconds=0))
    for key, answer in zip(keys, first, strict=True):
        again = await another_worker.funder_contribution(
            funder, start=key[1], end=last_day(key), release=release
        )
        assert again.model_dump(mode="json") == answer

    # The next month: one person joins (too few to show: the count of people enrolled at the
    # end of one of the two months must be withheld, and it cannot be the one already shown),
    # and it is busy, with one lift between two people.
    month = month_after(release.through)
    newcomer = await make_person(engine, "newcomer", timebank=timebank, roles=("member",))
    await raw.execute(
        "UPDATE participants SET joined_on = $2 WHERE id = $1", newcomer.participant_id, month
    )
    people = [world.member, world.other_member]
    for n in range(6):
        response = await client.post(
            f"/api/v1/timebanks/{timebank.slug}/exchanges",
            json={
                "giver_id": people[n % 2].participant_id,
                "receiver_id": people[(n + 1) % 2].participant_id,
                "minutes": 30 + 15 * n,
                "service_date": month.isoformat(),
                "category": "lifts" if n == 0 else "gardening",
                "description": "help",
            },
            headers=world.coordinator.headers,
        )
        assert response.status_code == 201, response.text
    later = Release(
        as_of=datetime.now(UTC) + timedelta(minutes=1), through=last_day(("month", month))
    )
    later_keys = year_periods(month.year, later.through)
    second = [
        (
            await another_worker.funder_contribution(
                funder, start=key[1], end=last_day(key), release=later
            )
        ).model_dump(mode="json")
        for key in later_keys
    ]
    known_first, known_second = read_reports(first), read_reports(second)
    in_second = set(known_second.shown) | known_second.withheld
    assert known_first.withheld & in_second <= known_second.withheld

    admin = access(world.admin.user_id, set(), admin=True)
    full = [
        (
            await another_worker.contribution(admin, start=key[1], end=last_day(key), as_of=moment)
        ).model_dump(mode="json")
        for keys_, moment in ((keys, release.as_of), (later_keys, None))
        for key in keys_
    ]
    known = read_reports(first + second)
    assert known.unknown()
    assert recovered(known, truth_of(full)) == {}

    with pytest.raises(asyncpg.PostgresError, match="stays withheld"):
        await raw.execute(
            "UPDATE published_cells SET withheld = false, first_withheld = NULL"
            " WHERE timebank_id = $1 AND withheld",
            timebank.id,
        )


# ---------------------------------------------------------------------------------------------
# The property, over random timebanks, on the pure suppression.
# ---------------------------------------------------------------------------------------------

KINDS = ("member", "professional", "organisation")


@st.composite
def timebanks(draw: st.DrawFn) -> dict[str, Any]:
    people = draw(
        st.lists(st.tuples(st.sampled_from(KINDS), st.integers(-14, 11)), min_size=2, max_size=14)
    )
    count = len(people)
    exchanges = draw(
        st.lists(
            st.tuples(
                st.integers(0, count - 1),
                st.integers(1, count - 1),
                st.integers(0, 11),
                st.sampled_from(("gardening", "lifts", "meals")),
                st.integers(1, 8).map(lambda n: 15 * n),
            ),
            max_size=60,
        )
    )
    # Gifts: (giver, recipient step or None for the pot, month, minutes); a giver None is a
    # grant from the pot.
    gifts = draw(
        st.lists(
            st.tuples(
                st.one_of(st.none(), st.integers(0, count - 1)),
                st.one_of(st.none(), st.integers(1, count - 1)),
                st.integers(0, 11),
                st.integers(1, 8).map(lambda n: 15 * n),
            ),
            max_size=40,
        )
    )
    # Group sessions: (host, attendees as steps from the host, month, category, minutes).
    sessions = draw(
        st.lists(
            st.tuples(
                st.integers(0, count - 1),
                st.sets(st.integers(1, count - 1), min_size=1, max_size=6),
                st.integers(0, 11),
                st.sampled_from(("gardening", "lifts", "meals")),
                st.integers(1, 4).map(lambda n: 30 * n),
            ),
            max_size=12,
        )
    )
    return {
        "people": people,
        "exchanges": [(g, (g + step) % count, m, c, mins) for g, step, m, c, mins in exchanges],
        "gifts": [
            (g, None if g is None or step is None else (g + step) % count, m, mins)
            if g is not None
            else (None, (step or 1) % count, m, mins)
            for g, step, m, mins in gifts
        ],
        "sessions": [
            (host, sorted((host + step) % count for step in steps), m, c, mins)
            for host, steps, m, c, mins in sessions
        ],
        "k": draw(st.integers(2, 5)),
        "through": draw(st.integers(2, 11)),  # the last published month of the year
    }


YEAR = 2025


def _month(n: int) -> date:
    """Month n of YEAR (negative: before it)."""
    return date(YEAR + (n // 12), n % 12 + 1, 1)


def model_reports(bank: dict[str, Any]) -> tuple[dict, dict[date, tuple[int, int]], date]:
    """Full-view reports of every published period of YEAR, and the enrolment by month, from
    a random timebank (joined on the first of a month; exchanges on the first of theirs)."""
    people, gifts, sessions = bank["people"], bank.get("gifts", []), bank.get("sessions", [])
    # Each leg of a session is an exchange between its host and one attendee.
    legs = [
        (host, attendee, month, category, minutes, n)
        for n, (host, attendees, month, category, minutes) in enumerate(sessions)
        for attendee in attendees
    ]
    exchanges = [*bank["exchanges"], *(leg[:5] for leg in legs)]
    through = last_day(("month", _month(bank["through"])))
    firsts: dict[int, date] = {}
    for giver, receiver, month, _, _ in sorted(exchanges, key=lambda e: e[2]):
        for who in (giver, receiver):
            firsts.setdefault(who, _month(month))

    def metrics(first: date, last: date) -> dict[str, Any]:
        inside = [e for e in exchanges if first <= _month(e[2]) <= last]
        active = {who for e in inside for who in e[:2]}
        enrolled = sum(1 for _, joined in people if _month(joined) <= last)
        new = sum(1 for _, joined in people if first <= _month(joined) <= last)
        first_ones = sum(1 for day in firsts.values() if first <= day <= last)
        minutes = sum(e[4] for e in inside)
        return {
            "minutes": minutes,
            "hours": round(minutes / 60, 2),
            "exchanges": len(inside),
            "participants": enrolled,
            "active": len(active),
            "active_share": 0.0,
            "new": new,
            "new_share": 0.0,
            "reciprocal": 0,
            "reciprocal_share": 0.0,
            "ties": 0,
            "two_way_ties": 0,
            "two_way_tie_share": 0.0,
            "first_exchanges": first_ones,
            "median_days_to_first_exchange": 0.0 if first_ones else None,
            **kinds(first, last),
        }

    def kinds(first: date, last: date) -> dict[str, Any]:
        made = [g for g in gifts if first <= _month(g[2]) <= last]
        to_member = [g for g in made if g[0] is not None and g[1] is not None]
        to_pot = [g for g in made if g[0] is not None and g[1] is None]
        granted = [g for g in made if g[0] is None]
        held = [leg for leg in legs if first <= _month(leg[2]) <= last]
        figures: dict[str, Any] = {}
        for name, chosen in (
            ("gifted", to_member),
            ("gifted_to_pot", to_pot),
            ("granted", granted),
        ):
            minutes = sum(g[3] for g in chosen)
            figures |= {f"{name}_minutes": minutes, f"{name}_hours": round(minutes / 60, 2)}
        session_minutes = sum(leg[4] for leg in held)
        return {
            **figures,
            "sessions": len({leg[5] for leg in held}),
            "session_attendances": len(held),
            "session_minutes": session_minutes,
            "session_hours": round(session_minutes / 60, 2),
            "gift_givers": len({g[0] for g in to_member}),
            "gift_recipients": len({g[1] for g in to_member}),
            "pot_givers": len({g[0] for g in to_pot}),
            "grant_recipients": len({g[1] for g in granted}),
            "session_people": len({who for leg in held for who in leg[:2]}),
        }

    def rows(first: date, last: date, key) -> list[dict[str, Any]]:
        grouped: dict[Any, list] = {}
        for e in exchanges:
            if first <= _month(e[2]) <= last:
                grouped.setdefault(key(e), []).append(e)
        return [
            {
                "label": label,
                "minutes": sum(e[4] for e in group),
                "hours": round(sum(e[4] for e in group) / 60, 2),
                "exchanges": len(group),
                "people": len({who for e in group for who in e[:2]}),
            }
            for label, group in sorted(grouped.items())
        ]

    full = {}
    for key in year_periods(YEAR, through):
        first, last = key[1], last_day(key)
        series = [
            Bucket.of(start=m, end=last_day(("month", m)), **metrics(m, last_day(("month", m))))
            for m in months_of(key)
        ]
        full[key] = ContributionReport(
            timebank="t",
            timebank_name="T",
            period=Period(start=first, end=last),
            as_of=datetime(YEAR + 1, 1, 8, tzinfo=UTC),
            interval="month",
            view="full",
            min_cell=None,
            totals=Metrics.of(**metrics(first, last)),
            series=series,
            categories=[
                CategoryRow(category=r.pop("label"), name="n", **r)
                for r in rows(first, last, lambda e: e[3])
            ],
            flows=[
                FlowRow(giver_kind=r["label"][0], receiver_kind=r.pop("label")[1], **r)
                for r in rows(first, last, lambda e: (people[e[0]][0], people[e[1]][0]))
            ],
        )
    earliest = min(joined for _, joined in people)
    enrolled = {}
    for n in range(earliest, bank["through"] + 1):
        m = _month(n)
        last = last_day(("month", m))
        enrolled[m] = (
            sum(1 for _, joined in people if _month(joined) <= last),
            sum(1 for _, joined in people if _month(joined) == m),
        )
    return full, enrolled, through


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timebanks())
def test_no_withheld_cell_can_be_recomputed_from_a_publication(bank):
    check_publication(bank)


def check_publication(bank: dict[str, Any]) -> None:
    """Nothing withheld of one publication of ``bank`` can be worked out, and every cell shown
    rests on k people."""
    full, enrolled, through = model_reports(bank)
    k = bank["k"]
    withheld = protect_release(full, enrolled, through, k).withheld
    published = [
        funder_report(key, report, withheld, k).model_dump(mode="json")
        for key, report in full.items()
    ]
    # The enrolment months before the year are published in earlier years' reports.
    for month, (participants, new) in enrolled.items():
        if month.year < YEAR:
            key = ("month", month)
            hidden = {"participants"} if ("enrolled", month) in withheld else set()
            hidden |= {"new"} if ("new", key) in withheld else set()
            figures = {
                name: None if name in hidden else value
                for name, value in (("participants", participants), ("new", new))
            }
            published.append(_enrolment_only(month, figures))
    known = read_reports(published)
    truth = truth_of([r.model_dump(mode="json") for r in full.values()])
    truth.update(_enrolment_truth(enrolled))
    assert recovered(known, truth) == {}
    for report in published:  # and the primary rule holds
        for row in (*report["categories"], *report["flows"]):
            assert row["minutes"] is None or row["people"] >= k
    for key, report in full.items():  # for gifts, grants and sessions too
        shown = funder_report(key, report, withheld, k)
        for row, seen in (
            (report.totals, shown.totals),
            *zip(report.series, shown.series, strict=True),
        ):
            if seen.gifted_minutes is not None:
                assert min(row.gift_givers, row.gift_recipients) >= k
            if seen.gifted_to_pot_minutes is not None:
                assert row.pot_givers >= k
            if seen.granted_minutes is not None:
                assert row.grant_recipients >= k
            if seen.sessions is not None or seen.session_minutes is not None:
                assert row.session_people >= k


def test_a_small_month_of_sessions_or_gifts_is_not_the_quarter_less_the_others():
    """January and March: big group sessions, gifts and grants among many; February: one
    session of two people, one gift, one grant. February's figures rest on fewer than k and
    are withheld, and so is something else in each relation, so the quarter less January and
    March does not give them away."""
    people = [("member", 0)] * 10
    many = list(range(1, 9))
    gifts = [
        *[(giver, 1, month, 60) for giver in range(6) for month in (0, 2)],  # to 6 recipients
        *[(giver, None, month, 30) for giver in range(6) for month in (0, 2)],
        *[(None, recipient, month, 45) for recipient in range(1, 7) for month in (0, 2)],
        (0, 1, 1, 15),
        (0, None, 1, 15),
        (None, 2, 1, 15),
    ]
    bank = {
        "people": people,
        "exchanges": [],
        "gifts": [
            (g, None if step is None else (g + step) % 10, m, mins)
            if g is not None
            else (None, step, m, mins)
            for g, step, m, mins in gifts
        ],
        "sessions": [
            (0, many, 0, "meals", 60),
            (1, [2], 1, "meals", 30),
            (0, many, 2, "meals", 90),
        ],
        "k": 3,
        "through": 3,
    }
    full, enrolled, through = model_reports(bank)
    withheld = protect_release(full, enrolled, through, bank["k"]).withheld
    february = ("month", _month(1))
    for figure in ("gifted", "gifted_to_pot", "granted", "sessions"):
        assert (figure, february) in withheld
        assert (figure, ("quarter", _month(0))) in withheld or any(
            (figure, ("month", _month(n))) in withheld for n in (0, 2)
        )
    check_publication(bank)


def _enrolment_only(month: date, figures: dict[str, int | None]) -> dict[str, Any]:
    """An earlier year's month as far as enrolment goes (its other figures left out)."""
    end = last_day(("month", month)).isoformat()
    blank = {name: 0 for name in ("minutes", "exchanges", "first_exchanges", *KIND_SUMS)}
    bucket = {"start": month.isoformat(), "end": end, **blank, **figures}
    return {
        "period": {"start": month.isoformat(), "end": end},
        "totals": {**blank, **figures},
        "series": [bucket],
        "categories": [],
        "flows": [],
    }


def _enrolment_truth(enrolled: Mapping[date, tuple[int, int]]) -> dict[Var, int]:
    truth: dict[Var, int] = {}
    for month, (participants, new) in enrolled.items():
        end = last_day(("month", month)).isoformat()
        truth[("participants", end)] = participants
        truth[("new", (month.isoformat(), end))] = new
    return truth


def test_the_review_example_is_protected():
    """525 minutes in all, 480 of them gardening among seven people, one 45-minute lift
    between two: the lift is withheld, and so is something else in the same relation."""
    bank = {
        "people": [("member", -3)] * 7,
        "exchanges": [(n, (n + 1) % 7, 0, "gardening", 60 + 15 * (n % 2)) for n in range(7)]
        + [(0, 1, 0, "lifts", 45)],
        "k": 5,
        "through": 11,
    }
    full, enrolled, through = model_reports(bank)
    withheld = protect_release(full, enrolled, through, 5).withheld
    january = funder_report(
        ("month", date(YEAR, 1, 1)), full[("month", date(YEAR, 1, 1))], withheld, 5
    )
    lifts = next(row for row in january.categories if row.category == "lifts")
    assert lifts.minutes is None
    assert (
        january.totals.minutes is None
        or sum(row.minutes is None for row in january.categories) >= 2
    )


# ---------------------------------------------------------------------------------------------
# Odd input: extreme periods, names that look like formulas or mathtext.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [
        ("0001-01-01", "0001-12-31", "from"),
        ("9999-12-01", "9999-12-31", "from"),
        ("2026-01-01", "9999-12-31", "to"),
    ],
)
async def test_periods_out_of_range_are_refused_by_name(client, world, first, last, field):
    slug = world.timebank.slug
    api = f"/api/v1/timebanks/{slug}/reports"
    query = f"from={first}&to={last}"
    for path, who in (
        (f"{api}/contribution?{query}", world.coordinator),
        (f"{api}/contribution?{query}&format=csv", world.coordinator),
        (f"{api}/contribution/charts/series.svg?{query}", world.coordinator),
        (f"{api}/reciprocity?{query}", world.coordinator),
        (f"{api}/reciprocity?{query}&format=csv", world.member),
        (f"{api}/contribution?{query}", world.funder),
        (f"{api}/contribution/charts/flows.svg?{query}", world.funder),
    ):
        response = await client.get(path, headers=who.headers)
        assert response.status_code == 422, (path, response.status_code, response.text)
        assert response.json()["errors"][0]["key"] == field, (path, response.text)


async def test_the_report_page_refuses_an_out_of_range_period_beside_its_field(client, world):
    as_person(client, world.funder)
    page = await client.get(
        f"/t/{world.timebank.slug}/report", params={"from": "9999-12-01", "to": "9999-12-31"}
    )
    assert page.status_code == 422
    assert 'id="from-error"' in page.text and 'value="9999-12-01"' in page.text


async def test_names_with_dollars_are_drawn_literally(client, engine, raw, world):
    name = r"Pay $\frac$ now"  # as mathtext: \frac without its arguments, an error
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE timebanks SET name = :name, approval_mode = 'automatic',"
                " confirmation_required = false WHERE id = :id"
            ),
            {"name": name, "id": world.timebank.id},
        )
        await conn.execute(
            text("UPDATE categories SET name = :name WHERE timebank_id = :id"),
            {"name": "Costs $x^2$", "id": world.timebank.id},
        )
    response = await client.post(
        f"/api/v1/timebanks/{world.timebank.slug}/exchanges",
        json={
            "giver_id": world.member.participant_id,
            "receiver_id": world.other_member.participant_id,
            "minutes": 30,
            "service_date": date.today().isoformat(),
            "category": "gardening",
            "description": "help",
        },
        headers=world.coordinator.headers,
    )
    assert response.status_code == 201, response.text
    await backdate(raw, world.timebank.id, datetime.now(UTC) - timedelta(hours=1))
    api = f"/api/v1/timebanks/{world.timebank.slug}/reports/contribution/charts"
    for chart in ("series", "categories", "flows"):
        for who in (world.coordinator, world.funder):
            svg = await client.get(f"{api}/{chart}.svg", headers=who.headers)
            assert svg.status_code == 200, (chart, svg.text)
            assert f">{name}</text>" in svg.text or f">{name}\n" in svg.text, chart
    categories = await client.get(f"{api}/categories.svg", headers=world.coordinator.headers)
    assert ">Costs $x^2$</text>" in categories.text


@pytest.mark.parametrize(
    # A leading tab or carriage return is quoted too, but no name can hold one any more.
    "name",
    ['=HYPERLINK("http://x.example","y")', "+1", "@SUM(1)", "-2+3"],
)
async def test_csv_cells_that_would_start_a_formula_are_quoted(client, engine, world, name):
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE participants SET display_name = :name WHERE id = :id"),
            {"name": name, "id": world.member.participant_id},
        )
    response = await client.get(
        f"/api/v1/timebanks/{world.timebank.slug}/reports/reciprocity?format=csv",
        headers=world.coordinator.headers,
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    names = {row["display_name"] for row in rows}
    assert "'" + name in names and name not in names
    own = await client.get(
        f"/api/v1/timebanks/{world.timebank.slug}/reports/reciprocity?format=csv",
        headers=world.member.headers,
    )
    assert [row["display_name"] for row in csv.DictReader(io.StringIO(own.text))] == ["'" + name]


def test_numbers_stay_numbers_in_csv():
    assert literal(-90) == -90 and literal(-1.5) == -1.5 and literal(0) == 0
    assert literal("-90") == "'-90" and literal("Ada") == "Ada"
    assert literal("\tx") == "'\tx" and literal("\rx") == "'\rx"


ODD_QUERIES = (
    "",
    "?from=2026-01-01%00&to=2026-03-31",
    "?from=%00&to=%00",
    "?as_of=%00",
    "?as_of=0001-01-01T00:00:00Z",
    "?as_of=9999-12-31T23:59:59Z",
    "?as_of=0001-01-01T00:00:00%2B14:00",  # year 0 in UTC
    "?as_of=9999-12-31T23:59:59-12:00",  # year 10000 in UTC
    "?as_of=2026-01-01T00:00:00",
    "?interval=%00",
    "?interval=week&from=2016-12-10&to=2026-12-01",  # over five hundred weeks
    "?view=%00",
    "?view=full",
    "?format=csv&from=2026-01-01&to=2026-03-31",
    "?participant_id=0",
    "?participant_id=99999999999999999999",
    "?from=2026-02-29",
)


async def test_report_routes_from_every_side_with_odd_input(client, engine, world):
    """Anonymous, a member, a member and a coordinator of another timebank, a funder of
    another timebank, the coordinator, the funder and the admin; odd input everywhere: never
    a 5xx, and each caller is refused where they should be."""
    other_funder = await make_person(
        engine, "other-funder", timebank=world.other_timebank, roles=("funder",)
    )
    slug = world.timebank.slug
    api = f"/api/v1/timebanks/{slug}/reports"
    callers = {
        "anonymous": None,
        "member": world.member,
        "stranger member": world.stranger_member,
        "stranger coordinator": world.stranger_coordinator,
        "other funder": other_funder,
        "coordinator": world.coordinator,
        "funder": world.funder,
        "admin": world.admin,
    }
    routes = ("reciprocity", "contribution", "contribution/charts/series.svg")
    for label, who in callers.items():
        headers = who.headers if who else {}
        for route in (*routes, "contribution/charts/%00.svg", "contribution/charts/x%00"):
            for query in ODD_QUERIES:
                response = await client.get(f"{api}/{route}{query}", headers=headers)
                where = (label, route, query, response.status_code, response.text[:200])
                assert response.status_code < 500, where
                nul = "%00" in route + query  # refused at the edge, before anyone is asked
                if nul:
                    assert response.status_code == 400, where
                elif who is None:
                    assert response.status_code == 401, where
                elif label in ("stranger member", "stranger coordinator", "other funder"):
                    assert response.status_code in (403, 404), where
                elif label == "member" and route != "reciprocity":
                    assert response.status_code in (400, 403, 404, 422), where
        own = await client.get(f"{api}/reciprocity", headers=world.member.headers)
        assert [r["participant_id"] for r in own.json()["rows"]] == [world.member.participant_id]
    page = f"/t/{slug}/report"
    for label, who in callers.items():
        as_person(client, who)
        for query in ("?from=%00&to=%00", "?from=0001-01-01&to=0001-12-31", "?to=9999-12-31"):
            response = await client.get(page + query, follow_redirects=False)
            assert response.status_code < 500, (label, query, response.text[:300])
    as_person(client, None)


def _consecutive_publications_leaking(*, recorded: bool, enough: int = 400) -> int:
    """Of 400 random timebanks, how many give a withheld cell away to a funder who reads three
    consecutive monthly publications together (each month's exchanges unchanged, so only the
    protection can differ). ``recorded``: each publication starts from what the earlier ones
    withheld and showed, as the service does; otherwise each is protected afresh. Stops
    counting at ``enough``."""

    def publish(bank, earlier):
        full, enrolled, through = model_reports(bank)
        protection = protect_release(
            full, enrolled, through, bank["k"], earlier if recorded else None
        )
        answers = [
            funder_report(key, report, protection.withheld, bank["k"]).model_dump(mode="json")
            for key, report in full.items()
        ]
        return answers, full, {**earlier, **protection.earlier()}

    rng = random.Random(1)
    leaking = 0
    for _ in range(400):
        n = rng.randint(2, 14)
        people = [(rng.choice(KINDS), rng.randint(0, 11)) for _ in range(n)]
        exchanges = []
        for _ in range(rng.randint(0, 60)):
            giver, step = rng.randrange(n), rng.randint(1, n - 1)
            category = rng.choice(("gardening", "lifts", "meals"))
            exchanges.append(
                (giver, (giver + step) % n, rng.randint(0, 11), category, 15 * rng.randint(1, 8))
            )
        k, first = rng.randint(2, 5), rng.randint(2, 9)
        answers: list[dict] = []
        full: dict = {}
        earlier: dict = {}
        for through in range(first, first + 3):
            bank = {"people": people, "exchanges": exchanges, "k": k, "through": through}
            seen, periods, earlier = publish(bank, earlier)
            answers += seen
            full.update(periods)
        known = read_reports(answers)
        truth = truth_of([r.model_dump(mode="json") for r in full.values()])
        truth.update(_enrolment_truth(model_reports(bank)[1]))
        found = recovered(known, truth)
        if any(cell[0] in ("minutes", "exchanges", "first_exchanges") for cell in found):
            leaking += 1
            if leaking == enough:
                break
    return leaking


def test_consecutive_publications_together_give_away_nothing_withheld():
    """Each publication starts from the cells the earlier ones withheld and avoids withholding,
    in their place, cells they showed: read together, they give nothing withheld away. (The
    same timebanks protected afresh each month do leak: the check can see it.)"""
    assert _consecutive_publications_leaking(recorded=True) == 0
    assert _consecutive_publications_leaking(recorded=False, enough=1) == 1


def test_a_publication_after_late_entries_gives_nothing_away_on_its_own():
    """Between two publications people join with a past joining day and exchanges are approved
    for past months, so cells the first publication showed now hold other values. The second
    publication, started from the first one's record, must still protect itself: a cell shown
    before at another value is not known at its new one, and can be withheld to hide another
    (before this, one new person in a past month could be read off two shown counts of
    people)."""
    rng = random.Random(3)
    for _ in range(150):
        n = rng.randint(3, 14)
        people = [(rng.choice(KINDS), rng.randint(0, 11)) for _ in range(n)]

        def exchanges_among(count: int, size: int, last_month: int) -> list[tuple]:
            found = []
            for _ in range(count):
                giver, step = rng.randrange(size), rng.randint(1, size - 1)
                category = rng.choice(("gardening", "lifts", "meals"))
                found.append(
                    (giver, (giver + step) % size, rng.randint(0, last_month), category, 15)
                )
            return found

        k, through = rng.randint(2, 5), rng.randint(2, 10)
        before = {
            "people": people,
            "exchanges": exchanges_among(rng.randint(0, 50), n, 11),
            "k": k,
            "through": through,
        }
        full, enrolled, last = model_reports(before)
        first = protect_release(full, enrolled, last, k)
        late_people = [
            (rng.choice(KINDS), rng.randint(0, through)) for _ in range(rng.randint(0, 2))
        ]
        after_people = people + late_people
        after = {
            "people": after_people,
            "exchanges": before["exchanges"]
            + exchanges_among(rng.randint(0, 3), len(after_people), through),
            "k": k,
            "through": through + 1,
        }
        full, enrolled, last = model_reports(after)
        second = protect_release(full, enrolled, last, k, first.earlier())
        published = [
            funder_report(key, report, second.withheld, k).model_dump(mode="json")
            for key, report in full.items()
        ]
        truth = truth_of([r.model_dump(mode="json") for r in full.values()])
        truth.update(_enrolment_truth(enrolled))
        assert recovered(read_reports(published), truth) == {}, (before, after)


async def test_what_a_funder_was_shown_never_changes_whatever_comes_late(
    client, engine, raw, history
):
    """The review's differencing, across publications: after a publication, an exchange in a
    new category is approved for a month it published, and a person joins with a joining day
    in it. The next publication shows that month, its quarter and its year exactly as before
    (every figure frozen at its first publication), so nothing late can be read off a
    difference; the late joiner counts as new in the month they were enrolled."""
    from timebank.auth.schemas import Principal, TimebankAccess
    from timebank.reports.service import Reports
    from timebank.settings import Settings

    world, months, release = history
    timebank = world.timebank
    keys = year_periods(months[0].year, release.through)
    first = {}
    for key in keys:
        response = await funder_get(client, world, key[1], last_day(key))
        assert response.status_code == 200, response.text
        first[key] = response.json()

    late_month = months[2]
    await client.post(
        f"/api/v1/timebanks/{timebank.slug}/categories",
        json={"slug": "household", "name": "Household"},
        headers=world.coordinator.headers,
    )
    response = await client.post(
        f"/api/v1/timebanks/{timebank.slug}/exchanges",
        json={
            "giver_id": world.member.participant_id,
            "receiver_id": world.other_member.participant_id,
            "minutes": 41,
            "service_date": (late_month + timedelta(days=24)).isoformat(),
            "category": "household",
            "description": "late",
        },
        headers=world.coordinator.headers,
    )
    assert response.status_code == 201, response.text
    newcomer = await make_person(engine, "late", timebank=timebank, roles=("member",))
    await raw.execute(
        "UPDATE participants SET joined_on = $2 WHERE id = $1", newcomer.participant_id, months[1]
    )

    funder = TimebankAccess(
        principal=Principal(user_id=world.funder.user_id, email="f", is_admin=False, token_id=0),
        timebank_id=timebank.id,
        timebank_slug=timebank.slug,
        roles=frozenset({"funder"}),
    )
    later = Release(
        as_of=datetime.now(UTC) + timedelta(minutes=1),
        through=last_day(("month", month_after(release.through))),
    )
    reports = Reports(engine, Settings(report_settle_seconds=0))
    for key in keys:
        again = (
            await reports.funder_contribution(
                funder, start=key[1], end=last_day(key), release=later
            )
        ).model_dump(mode="json")
        assert again == first[key], key
    # The coordinators' full view does count what came late.
    admin = TimebankAccess(
        principal=Principal(user_id=world.admin.user_id, email="a", is_admin=True, token_id=0),
        timebank_id=timebank.id,
        timebank_slug=timebank.slug,
    )
    full = await reports.contribution(admin, start=late_month, end=last_day(("month", late_month)))
    assert "household" in {row.category for row in full.categories}


def test_late_joiners_count_as_new_when_enrolled_and_quarters_are_sums_of_months_as_published():
    from timebank.reports.frozen import frozen_periods, net_new

    assert net_new({date(2025, 1, 1): 10, date(2025, 2, 1): 10, date(2025, 3, 1): 13}) == {
        date(2025, 1, 1): 10,
        date(2025, 2, 1): 0,
        date(2025, 3, 1): 3,
    }
    bank = {
        "people": [("member", 0)] * 6 + [("organisation", 1)],
        "exchanges": [(n, (n + 1) % 7, n % 3, "gardening", 30 + 15 * n) for n in range(7)],
        "k": 3,
        "through": 2,
    }
    full, _, _ = model_reports(bank)
    months = {key[1]: report for key, report in full.items() if key[0] == "month"}
    quarter = ("quarter", date(YEAR, 1, 1))
    frozen, _ = frozen_periods(months, {quarter: full[quarter]}, {m: 1 for m in months})
    summed = frozen[quarter]
    assert summed.totals.minutes == sum(months[m].totals.minutes for m in months)
    assert summed.totals.new == 3 and [b.new for b in summed.series] == [1, 1, 1]
    assert [b.minutes for b in summed.series] == [months[m].totals.minutes for m in sorted(months)]


def test_a_quarter_sum_is_judged_by_the_people_of_its_months_as_published():
    """The outside check's case: two people exchange 'lifts' in January and February (each
    month withholds the row); five more lifts among five others are approved for January after
    it was published. The quarter's lift minutes are the two people's 75 (its months as
    published), while its own count of people, made later, is 7: the sum must still be
    withheld."""
    from timebank.reports.frozen import frozen_periods

    people = [("member", -3)] * 7
    garden = [(n, (n + 1) % 7, month, "gardening", 60) for month in range(3) for n in range(7)]
    lifts = [(0, 1, 0, "lifts", 30), (0, 1, 1, "lifts", 45)]
    late = [(n, 2 + (n - 1) % 5, 0, "lifts", 20) for n in range(2, 7)]
    published = {"people": people, "exchanges": garden + lifts, "k": 5, "through": 2}
    counted_later = {**published, "exchanges": garden + lifts + late}
    months_full, enrolled, through = model_reports(published)
    later_full, _, _ = model_reports(counted_later)
    quarter = ("quarter", date(YEAR, 1, 1))
    months = {key[1]: report for key, report in months_full.items() if key[0] == "month"}
    frozen, fewest = frozen_periods(months, {quarter: later_full[quarter]}, {m: 0 for m in months})
    row = next(r for r in frozen[quarter].categories if r.category == "lifts")
    assert (row.minutes, row.people) == (75, 7)
    cell = ("category", quarter, "lifts")
    assert cell in protect_release(frozen, enrolled, through, 5, people=fewest).withheld
    # Withheld for resting on the months' people (not only to protect another cell).
    assert cell in volume_table(frozen, 5, fewest).primary
    assert cell not in volume_table(frozen, 5).primary


def test_a_quarter_of_sessions_is_judged_by_the_people_of_its_months_as_published():
    """The same for group sessions: one session of two people in January and one in February
    (each month withholds its sessions); a session of six more is approved for January after
    it was published. The quarter's session figures are its months' as published (two
    sessions of two people), while its own count of people, made later, is 8: withheld."""
    from timebank.reports.frozen import frozen_periods

    people = [("member", -3)] * 8
    garden = [(n, (n + 1) % 8, month, "gardening", 60) for month in range(3) for n in range(8)]
    small = [(0, [1], 0, "cooking", 30), (0, [1], 1, "cooking", 30)]
    late = [(2, [3, 4, 5, 6, 7], 0, "cooking", 60)]
    published = {"people": people, "exchanges": garden, "sessions": small, "k": 5, "through": 2}
    counted_later = {**published, "sessions": small + late}
    months_full, enrolled, through = model_reports(published)
    later_full, _, _ = model_reports(counted_later)
    quarter = ("quarter", date(YEAR, 1, 1))
    months = {key[1]: report for key, report in months_full.items() if key[0] == "month"}
    frozen, fewest = frozen_periods(months, {quarter: later_full[quarter]}, {m: 0 for m in months})
    totals = frozen[quarter].totals
    assert (totals.sessions, totals.session_minutes, totals.session_people) == (2, 60, 8)
    cell = ("sessions", quarter)
    assert fewest[cell] == 2
    assert cell in protect_release(frozen, enrolled, through, 5, people=fewest).withheld
    # Withheld for resting on the months' people (not only to protect another cell).
    assert cell in volume_table(frozen, 5, fewest).primary
    assert cell not in volume_table(frozen, 5).primary


async def test_sessions_and_gifts_reach_the_funder_protected_and_recorded(
    client, engine, raw, ledger, history
):
    """Through the database and HTTP: in the published quarter, big group sessions and gifts
    in months one and three, and in month two one session of two people, one gift, one grant
    and one gift to the pot. Month two is withheld, and so is another cell of each relation,
    so the quarter less the others does not give it away; the publication records the new cells;
    the full view counts them all; the CSV has their columns."""
    world, months, _ = history
    members = [
        row["id"]
        for row in await raw.fetch(
            "SELECT id FROM participants WHERE timebank_id = $1 AND kind = 'member' ORDER BY id",
            world.timebank.id,
        )
    ]
    assert len(members) >= 7
    for month, attendees in ((months[0], members[1:7]), (months[1], members[1:2])):
        await log_session(
            engine,
            world.timebank.id,
            host_id=members[0],
            attendees=attendees,
            minutes=[60] * len(attendees),
            service_date=month + timedelta(days=20),
            category="cooking",
        )
    await log_session(
        engine,
        world.timebank.id,
        host_id=members[6],
        attendees=members[:6],
        minutes=[30] * 6,
        service_date=months[2] + timedelta(days=20),
        category="cooking",
        host_side="receiver",
    )
    made: list[tuple[int, date]] = []
    for month, givers in ((months[0], range(6)), (months[1], range(1)), (months[2], range(6))):
        for n in givers:
            for to in (members[(n + 1) % 7], None):
                gift = await ledger.gift(world.timebank.id, members[n], to, 20 + n)
                made.append((gift.record.id, month))
            grant = await ledger.gift(
                world.timebank.id, None, members[n], 25, user_id=world.coordinator.user_id
            )
            made.append((grant.record.id, month))
    await backdate(raw, world.timebank.id, datetime.combine(months[0], datetime.min.time(), UTC))
    async with raw.transaction():  # gifts are stamped with the clock: made in their months
        await raw.execute("SET LOCAL session_replication_role = replica")
        for gift_id, month in made:
            await raw.execute(
                "UPDATE gifts SET created_at = $2 WHERE id = $1",
                gift_id,
                datetime.combine(month + timedelta(days=5), datetime.min.time(), UTC),
            )
    await catch_up(engine)

    quarter = await funder_get(client, world, months[0], quarter_end(months))
    assert quarter.status_code == 200, quarter.text
    report = quarter.json()
    first, second, third = report["series"]
    for name in ("sessions", "session_minutes", "gifted_minutes", "granted_minutes"):
        assert second[name] is None and name in second["suppressed"]
    for name in ("gift_givers", "session_people"):  # what cells rest on is never shown
        assert name not in report["totals"] and name not in second
    answered = [report]
    for month in months:
        single = await funder_get(client, world, month, last_day(("month", month)))
        assert single.status_code == 200
        answered.append(single.json())
    full = [
        (
            await client.get(
                contribution(
                    world,
                    r["period"]["start"],
                    r["period"]["end"],
                    as_of=r["as_of"].replace("+", "%2B"),
                ),
                headers=world.coordinator.headers,
            )
        ).json()
        for r in answered
    ]
    whole = full[0]
    assert [b["sessions"] for b in whole["series"]] == [1, 1, 1]
    assert [b["session_attendances"] for b in whole["series"]] == [6, 1, 6]
    assert [b["session_minutes"] for b in whole["series"]] == [360, 60, 180]
    assert [b["gifted_minutes"] for b in whole["series"]] == [135, 20, 135]
    assert [b["gifted_to_pot_minutes"] for b in whole["series"]] == [135, 20, 135]
    assert [b["granted_minutes"] for b in whole["series"]] == [150, 25, 150]
    assert (whole["totals"]["minutes"], whole["totals"]["exchanges"]) == (
        sum(b["minutes"] for b in whole["series"]),
        sum(b["exchanges"] for b in whole["series"]),
    )
    for name in ("sessions", "session_minutes", "gifted_minutes", "granted_minutes"):
        # Month two alone withheld would be the quarter less the others: one more is.
        cells = [report["totals"][name], first[name], third[name]]
        assert None in cells, (name, cells)
        for shown, truth in zip(
            cells, [whole["totals"][name], *(whole["series"][n][name] for n in (0, 2))], strict=True
        ):
            assert shown is None or shown == truth
    known = read_reports(answered)
    assert {("sessions", (months[1].isoformat(), last_day(("month", months[1])).isoformat()))} <= (
        known.unknown()
    )
    assert recovered(known, truth_of(full)) == {}
    recorded = {
        row["figure"]
        for row in await raw.fetch(
            "SELECT DISTINCT figure FROM published_cells WHERE timebank_id = $1",
            world.timebank.id,
        )
    }
    assert {"gifted", "gifted_to_pot", "granted", "sessions"} <= recorded
    # The same quarter asked again shows the same, and the CSV carries the new columns.
    assert (await funder_get(client, world, months[0], quarter_end(months))).json() == report
    as_csv = await funder_get(client, world, months[0], quarter_end(months), format="csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert rows[0]["section"] == "totals" and "session_minutes" in rows[0]
    assert [row["sessions"] for row in rows if row["section"] == "series"][1] == "suppressed"
    # The funder page shows the same totals, withheld where the JSON withholds them.
    as_person(client, world.funder)
    page = await client.get(
        f"/t/{world.timebank.slug}/report",
        params={"from": months[0].isoformat(), "to": quarter_end(months).isoformat()},
    )
    as_person(client, None)
    assert page.status_code == 200
    words = text_of(page.text)
    for label, name in (
        ("Group sessions held", "sessions"),
        ("Attendances at group sessions", "session_attendances"),
        ("Hours in group sessions", "session_hours"),
        ("Hours gifted to members", "gifted_hours"),
        ("Hours gifted to the community pot", "gifted_to_pot_hours"),
        ("Hours granted from the community pot", "granted_hours"),
    ):
        value = report["totals"][name]
        assert f"{label} {'withheld' if value is None else value}" in words, (label, words)


def test_the_minutes_outside_group_sessions_do_not_give_away_a_small_row():
    """January: a lunch club (a host and four, an hour each, all cooking) and one gardening
    exchange between two others; February and March: busy. The gardening row rests on two
    people and is withheld (and cooking with it). Were the month's minutes and its sessions'
    minutes both shown, their difference would be the gardening row (and exchanges less
    attendances its one exchange): one of them is withheld too."""
    people = [("member", -1)] * 12
    busy = [(g, (g + 1) % 12, m, "lifts", 60) for m in (1, 2) for g in range(12)]
    bank = {
        "people": people,
        "exchanges": [(5, 6, 0, "gardening", 90), *busy],
        "gifts": [],
        "sessions": [(0, [1, 2, 3, 4], 0, "meals", 60)],
        "through": 2,
    }
    full, enrolled, through = model_reports(bank)
    protection = protect_release(full, enrolled, through, K)
    january = ("month", _month(0))
    seen = funder_report(january, full[january], protection.withheld, K).totals
    assert all(
        row.minutes is None
        for row in funder_report(january, full[january], protection.withheld, K).categories
    )
    assert seen.minutes is None or seen.session_minutes is None
    assert seen.exchanges is None or seen.session_attendances is None
    # The cell the suppression reasons with is never recorded as published.
    recorded = {cell[0] for cell in (*protection.withheld, *protection.shown)}
    assert "outside_sessions" not in recorded
