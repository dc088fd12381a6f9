"""The reports benchmark's timebank, generated in memory (indexes 0..n-1): its people, their
circles and their exchanges.

What the generator assumes (a timebank is a local network of regular relationships)
    - Kinds: 92% members, 5% professionals (a nurse, a tutor: people giving through their
      work), 3% organisations (a library, a food bank).
    - Participants live in neighbourhoods of about 150; about a third joined before the
      window (the founders, up to two years earlier), the rest joined evenly over it, so the
      timebank grows and so does its activity (about half the exchanges fall in the last
      year).
    - A fifth of the members never exchange at all. Everyone else has an activity weight
      drawn from a log-normal distribution (a few busy people, a long tail), three times
      heavier for professionals and six times for organisations.
    - Each active participant has a small circle of regular partners: 1-5 for members, 10-30
      for professionals, 20-60 for organisations; 85% of them from the same neighbourhood, the
      rest from anywhere in town, busier people more likely (in proportion to the square root
      of their weight). A tie has a strength (how often the pair meets: the less busy of the
      two sets the pace), a direction (a professional gives to a member nine times in ten;
      30% of other ties are one-way, like befriending a housebound neighbour; the rest go
      both ways in varying proportion), a favourite category (70% of the pair's exchanges)
      and a lifetime (exponential, 900 days on average) starting once both have joined.
    - 95% of the exchanges are drawn from these ties in proportion to strength times
      lifetime, on a day of the tie's life, so nobody exchanges before joining; 5% are
      one-offs between neighbours. Minutes are 30 to 180, in quarter hours, mostly 60 to 120.
    - Categories are the ones every timebank is seeded with (``DEFAULT_CATEGORIES``),
      professionals leaning to wellbeing and tutoring, organisations to events and befriending.

"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass, field

PROFESSIONAL_SHARE = 0.05
ORGANISATION_SHARE = 0.03
NEIGHBOURHOOD_SIZE = 150
FOUNDER_SHARE = 0.35
FOUNDED_DAYS_BEFORE = 730
DORMANT_MEMBER_SHARE = 0.20
KIND_ACTIVITY = {"member": 1.0, "professional": 3.0, "organisation": 6.0}
CIRCLE_SIZE = {"member": (1, 5), "professional": (10, 30), "organisation": (20, 60)}
LOCAL_SHARE = 0.85
ONE_WAY_SHARE = 0.30
TIE_DAYS = 900  # mean lifetime of a tie (exponential)
ACTIVITY_SIGMA = 0.7
FAVOURITE_SHARE = 0.70
ONE_OFF_SHARE = 0.05
MINUTES = (30, 45, 60, 75, 90, 105, 120, 135, 150, 165, 180)
MINUTE_WEIGHTS = (6, 5, 20, 8, 16, 5, 14, 3, 5, 1, 3)
CATEGORY_WEIGHTS = {
    "befriending": 18,
    "gardening": 14,
    "lifts": 12,
    "cooking": 10,
    "tutoring": 8,
    "household": 14,
    "admin": 6,
    "wellbeing": 6,
    "events": 6,
    "other": 6,
}
KIND_CATEGORIES = {
    "professional": ("wellbeing", "tutoring", "admin"),
    "organisation": ("events", "befriending", "cooking"),
}


@dataclass
class Town:
    kinds: list[str]
    joined: list[int]  # date ordinals
    hood: list[int]
    weight: list[float]
    hoods: int


@dataclass
class _Tie:
    a: int
    b: int
    strength: float
    a_gives: float  # probability that a is the giver
    favourite: str
    since: int  # the first day the pair exchanges: both have joined (ordinal)
    days: int  # how many days the tie lasts within the window


@dataclass
class Plan:
    """The exchanges to write, in service-date order."""

    day: list[int] = field(default_factory=list)
    giver: list[int] = field(default_factory=list)
    receiver: list[int] = field(default_factory=list)
    minutes: list[int] = field(default_factory=list)
    category: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.day)


class _Picker:
    """Draw from a list of people in proportion to their weights."""

    def __init__(self, people: list[int], weight: list[float]) -> None:
        self.people = people
        self.cumulative = list(itertools.accumulate(weight[p] for p in people))

    def pick(self, rng: random.Random) -> int:
        total = self.cumulative[-1]
        return self.people[bisect.bisect_right(self.cumulative, rng.random() * total)]


def generate_town(n: int, first_day: int, last_day: int, rng: random.Random) -> Town:
    professionals = round(n * PROFESSIONAL_SHARE)
    organisations = round(n * ORGANISATION_SHARE)
    kinds = (
        ["professional"] * professionals
        + ["organisation"] * organisations
        + ["member"] * (n - professionals - organisations)
    )
    rng.shuffle(kinds)
    hoods = max(1, round(n / NEIGHBOURHOOD_SIZE))
    hood = [rng.randrange(hoods) for _ in range(n)]
    joined = [
        first_day - rng.randint(1, FOUNDED_DAYS_BEFORE)
        if rng.random() < FOUNDER_SHARE
        else rng.randint(first_day, last_day)
        for _ in range(n)
    ]
    weight = [
        0.0
        if kind == "member" and rng.random() < DORMANT_MEMBER_SHARE
        else KIND_ACTIVITY[kind] * rng.lognormvariate(0.0, ACTIVITY_SIGMA)
        for kind in kinds
    ]
    return Town(kinds=kinds, joined=joined, hood=hood, weight=weight, hoods=hoods)


def _category(rng: random.Random, kinds: tuple[str, str]) -> str:
    for kind in kinds:
        if kind in KIND_CATEGORIES and rng.random() < 0.8:
            return rng.choice(KIND_CATEGORIES[kind])
    return rng.choices(list(CATEGORY_WEIGHTS), weights=list(CATEGORY_WEIGHTS.values()))[0]


def _direction(rng: random.Random, kind_a: str, kind_b: str) -> float:
    if kind_a == "professional" and kind_b != "professional":
        return 0.9
    if kind_b == "professional" and kind_a != "professional":
        return 0.1
    if rng.random() < ONE_WAY_SHARE:
        return 0.97 if rng.random() < 0.5 else 0.03
    return rng.betavariate(2, 2)


def _pickers(town: Town) -> tuple[_Picker, list[_Picker | None]]:
    active = [p for p, w in enumerate(town.weight) if w > 0]
    local: list[list[int]] = [[] for _ in range(town.hoods)]
    for p in active:
        local[town.hood[p]].append(p)
    # Busier people are more likely partners, though less than in proportion.
    pull = [math.sqrt(w) for w in town.weight]
    return _Picker(active, pull), [
        _Picker(people, pull) if len(people) > 1 else None for people in local
    ]


def _ties(town: Town, first_day: int, last_day: int, rng: random.Random) -> list[_Tie]:
    everyone, local = _pickers(town)
    if len(everyone.people) < 2:
        raise ValueError("the generated timebank has fewer than two active participants")
    ties: list[_Tie] = []
    seen: set[tuple[int, int]] = set()
    for p in everyone.people:
        low, high = CIRCLE_SIZE[town.kinds[p]]
        neighbours = local[town.hood[p]]
        for _ in range(rng.randint(low, high)):
            pool = neighbours if neighbours and rng.random() < LOCAL_SHARE else everyone
            q = pool.pick(rng)
            key = (p, q) if p < q else (q, p)
            if q == p or key in seen:
                continue
            seen.add(key)
            a, b = key
            kinds = (town.kinds[a], town.kinds[b])
            since = max(first_day, town.joined[a], town.joined[b])
            lasts = 1 + round(rng.expovariate(1 / TIE_DAYS))
            ties.append(
                _Tie(
                    a=a,
                    b=b,
                    # the less busy of the two sets the pace
                    strength=min(town.weight[a], town.weight[b]) * rng.lognormvariate(0.0, 0.5),
                    a_gives=_direction(rng, *kinds),
                    favourite=_category(rng, kinds),
                    since=since,
                    days=min(lasts, last_day - since + 1),
                )
            )
    return ties


def plan_exchanges(
    town: Town, count: int, first_day: int, last_day: int, rng: random.Random
) -> Plan:
    ties = _ties(town, first_day, last_day, rng)
    everyone, local = _pickers(town)
    # A tie exchanges at a steady rate while it lasts: drawn in proportion to its strength
    # times its days, on a day of its own uniformly.
    cumulative = list(itertools.accumulate(t.strength * t.days for t in ties))
    total = cumulative[-1]
    span = last_day - first_day + 1
    minutes = rng.choices(MINUTES, weights=MINUTE_WEIGHTS, k=count)
    rows: list[tuple[int, int, int, int, str]] = []
    one_offs = round(count * ONE_OFF_SHARE)
    for tie in (
        ties[bisect.bisect_right(cumulative, rng.random() * total)] for _ in range(count - one_offs)
    ):
        day = tie.since + rng.randrange(tie.days)
        giver, receiver = (tie.a, tie.b) if rng.random() < tie.a_gives else (tie.b, tie.a)
        category = (
            tie.favourite
            if rng.random() < FAVOURITE_SHARE
            else _category(rng, (town.kinds[giver], town.kinds[receiver]))
        )
        rows.append((day, giver, receiver, minutes[len(rows)], category))
    while len(rows) < count:
        giver = everyone.pick(rng)
        neighbours = local[town.hood[giver]] or everyone
        receiver = neighbours.pick(rng)
        day = first_day + rng.randrange(span)
        if receiver == giver or day < max(town.joined[giver], town.joined[receiver]):
            continue
        category = _category(rng, (town.kinds[giver], town.kinds[receiver]))
        rows.append((day, giver, receiver, minutes[len(rows)], category))
    rows.sort(key=lambda row: row[0])
    plan = Plan()
    for day, giver, receiver, spent, category in rows:
        plan.day.append(day)
        plan.giver.append(giver)
        plan.receiver.append(receiver)
        plan.minutes.append(spent)
        plan.category.append(category)
    return plan
