"""The demo's plan: who joins when, who signs in, and the exchanges they will log, with what
becomes of each. The same seed gives the same plan, with dates relative to today."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from timebank.auth.schemas import Role, TimebankAccess
from timebank.demo.data import (
    AGENCY_HELP,
    AWAITING_APPROVAL,
    AWAITING_CONFIRMATION,
    CANCELLED,
    COORDINATOR,
    DISPUTED,
    EXCHANGES,
    HELP,
    HISTORY_DAYS,
    MEMBERS,
    MEMBERS_WITH_LOGIN,
    MINUTE_WEIGHTS,
    MINUTES,
    ORGANISATIONS,
    POLICY,
    PROFESSIONALS,
    REJECTED,
    REVERSED,
)
from timebank.participants.schemas import DEFAULT_CATEGORIES, ParticipantKind


@dataclass(eq=False)
class Person:
    kind: ParticipantKind
    name: str
    joined_on: date
    activity: float
    email: str | None = None
    roles: list[Role] | None = None
    id: int = 0
    access: TimebankAccess | None = None  # set once they have signed in

    @property
    def signs_in(self) -> bool:
        return self.email is not None


@dataclass(eq=False)
class Plan:
    giver: Person
    receiver: Person
    minutes: int
    category: str
    description: str
    on: date
    giver_logs: bool  # which party logs it, when both can sign in
    other_way: str  # the description, should the help go the other way
    fate: str = "approve"  # see _assign_fates

    def turn_round(self) -> None:
        self.giver, self.receiver = self.receiver, self.giver
        self.description, self.other_way = self.other_way, self.description

    @property
    def both_sign_in(self) -> bool:
        return self.giver.signs_in and self.receiver.signs_in


def email_for(name: str, domain: str) -> str:
    """``priya@riverside.example`` from ``Priya (local area co-ordinator)``."""
    first = unicodedata.normalize("NFKD", name.split()[0]).encode("ascii", "ignore").decode()
    return f"{''.join(c for c in first.lower() if c.isalnum())}@{domain}"


def people_for(rng: random.Random, today: date, domain: str) -> list[Person]:
    start = today - timedelta(days=HISTORY_DAYS)
    people = [Person("organisation", name, start, 1.0) for name in ORGANISATIONS]
    for name in PROFESSIONALS:
        if name == COORDINATOR:  # she started the timebank
            people.append(
                Person(
                    "professional",
                    name,
                    start,
                    1.0,
                    email=email_for(name, domain),
                    roles=["coordinator", "member"],
                )
            )
        else:
            joined = start + timedelta(days=rng.randint(0, 30))
            people.append(Person("professional", name, joined, 1.0))
    for index, name in enumerate(MEMBERS):
        # A handful of founders in the first fortnight, then a steady trickle of newcomers.
        offset = rng.randint(0, 14) if index < 8 else rng.randint(15, HISTORY_DAYS - 10)
        activity = rng.choice([0.4, 0.7, 1.0, 1.0, 1.5, 2.5])  # some people do a lot more
        person = Person("member", name, start + timedelta(days=offset), activity)
        if name in MEMBERS_WITH_LOGIN:  # those who sign in tend to be the keenest
            person.email, person.activity = email_for(name, domain), max(activity, 1.5)
        people.append(person)
    return people


def plan_exchanges(rng: random.Random, people: list[Person], today: date) -> list[Plan]:
    members = [p for p in people if p.kind == "member"]
    professionals = [p for p in people if p.kind == "professional"]
    organisations = [p for p in people if p.kind == "organisation"]
    member_weights = [p.activity for p in members]
    signing_in = [p for p in members if p.signs_in]
    plans: list[Plan] = []
    while len(plans) < EXCHANGES:
        member = rng.choices(members, member_weights)[0]
        flow = rng.random()
        if flow < 0.72:
            # Those who use the app have got to know each other at the app sessions.
            circle = signing_in if member.signs_in and rng.random() < 0.5 else members
            other = rng.choices(circle, [p.activity for p in circle])[0]
            if other is member:
                continue
            giver, receiver = (member, other) if rng.random() < 0.5 else (other, member)
            category = rng.choice(list(DEFAULT_CATEGORIES))
            help_text = other_way = rng.choice(HELP[category])
        else:
            other = rng.choice(professionals if flow < 0.86 else organisations)
            key = other.name if other.kind == "organisation" else "professional"
            category, member_gives, agency_gives = rng.choice(AGENCY_HELP[key])
            if rng.random() < 0.55:
                giver, receiver, help_text, other_way = member, other, member_gives, agency_gives
            else:
                giver, receiver, help_text, other_way = other, member, agency_gives, member_gives
        since = max(giver.joined_on, receiver.joined_on)
        on = since + timedelta(days=rng.randint(0, (today - since).days))
        minutes = rng.choices(MINUTES, MINUTE_WEIGHTS)[0]
        plans.append(
            Plan(
                giver,
                receiver,
                minutes,
                category,
                _sentence(help_text),
                on,
                giver_logs=rng.random() < 0.6,
                other_way=_sentence(other_way),
            )
        )
    plans.sort(key=lambda plan: plan.on)
    _keep_within_limits(plans, people)
    _assign_fates(rng, plans, today)
    return plans


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def _keep_within_limits(plans: list[Plan], people: list[Person]) -> None:
    """Someone who has received a lot is asked to give: where the receiver's account would go
    below its floor, the help goes the other way (if the giver can afford it), as a
    coordinator would arrange. Whatever is still refused is skipped at load time."""
    floor = POLICY.default_floor_minutes
    balance = {person: POLICY.welcome_grant_minutes for person in people}
    for plan in plans:
        if (
            balance[plan.receiver] - plan.minutes < floor
            and balance[plan.giver] - plan.minutes >= floor
        ):
            plan.turn_round()
        balance[plan.giver] += plan.minutes
        balance[plan.receiver] -= plan.minutes


def _assign_fates(rng: random.Random, plans: list[Plan], today: date) -> None:
    """Most exchanges are approved; the recent ones are still on their way, and a few went
    wrong in the ways a coordinator sees every month."""

    def assign(fate: str, count: int, *, within: int | None = None, both: bool = False) -> None:
        pool = [
            plan
            for plan in plans
            if plan.fate == "approve"
            and (within is None or (today - plan.on).days <= within)
            and (plan.both_sign_in or not both)
        ]
        for plan in rng.sample(pool, min(count, len(pool))):
            plan.fate = fate

    # Disputes and confirmations need both parties to sign in.
    assign("unconfirmed", AWAITING_CONFIRMATION, within=21, both=True)
    assign("dispute", DISPUTED, within=60, both=True)
    assign("dispute_reject", 1, both=True)
    assign("dispute_approve", 1, both=True)
    assign("awaiting", AWAITING_APPROVAL, within=30)
    assign("reject", REJECTED)
    assign("cancel", CANCELLED)
    assign("reverse", REVERSED)
