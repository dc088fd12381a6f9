"""A realistic demo timebank, loaded through the real services (``timebank demo``).

Everything goes through :class:`Participants` and :class:`Ledger`, exactly as the service does:
participants are enrolled with their welcome hours from the community fund, exchanges are posted,
reserved (waiting for approval), approved, voided or reversed, and any exchange an account's
limits refuse is skipped and counted. The same seed gives the same plan of exchanges; dates are
relative to today.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from timebank.db.engine import create_engine
from timebank.errors import Conflict, LimitExceeded, NotFound
from timebank.ledger.service import Ledger
from timebank.participants.schemas import (
    DEFAULT_CATEGORIES,
    ParticipantKind,
    ParticipantRecord,
    TimebankPolicy,
)
from timebank.participants.service import Participants
from timebank.settings import Settings

DEMO_NAME = "Riverside Timebank"
WELCOME_GRANT_MINUTES = 120
HISTORY_DAYS = 240  # about eight months
EXCHANGES = 300

_KINDS: tuple[ParticipantKind, ...] = ("member", "professional", "organisation")

MEMBERS = [
    "Margaret Evans",
    "Tariq Hussain",
    "Aisha Begum",
    "Sean O'Brien",
    "Grace Okafor",
    "Dylan Jones",
    "Mei Lin Chen",
    "Hamish MacLeod",
    "Zofia Nowak",
    "Winston Campbell",
    "Harpreet Kaur",
    "Bronwen Price",
    "Kofi Mensah",
    "Eileen Doherty",
    "Oliver Bennett",
    "Fatima Ali",
    "Ravi Patel",
    "Joan Whitaker",
    "Callum Reid",
    "Chloe Thompson",
    "Ngozi Adeyemi",
    "Stanley Hughes",
    "Yasmin Rahman",
    "Patrick Kelly",
    "Lucy Fairbrother",
    "Andrzej Kowalski",
    "Doreen Marsh",
    "Jamal Ahmed",
    "Sophie Turner",
    "Rhys Williams",
]
PROFESSIONALS = [
    "Priya (care home co-ordinator)",
    "Tom (local area co-ordinator)",
    "Janet (library outreach worker)",
    "Kwame (social prescriber)",
    "Siân (school family liaison)",
]
ORGANISATIONS = [
    "Maple Court Care Home",
    "Riverside Library",
    "St Anne's Primary",
]

# Short labels for memos; every key is one of DEFAULT_CATEGORIES.
CATEGORY_LABELS = {
    "befriending": "Befriending",
    "gardening": "Gardening",
    "lifts": "Lifts",
    "cooking": "Cooking",
    "tutoring": "Tutoring",
    "household": "Household help",
    "admin": "Letters and forms",
    "wellbeing": "Wellbeing",
    "events": "Community events",
    "other": "Other",
}

# What people do for each other, by category.
HELP: dict[str, list[str]] = {
    "befriending": [
        "cup of tea and a chat",
        "weekly phone check-in",
        "walk round the park",
        "reading the paper together",
        "company at a hospital appointment",
    ],
    "gardening": [
        "weeding the allotment",
        "mowing the lawn",
        "planting spring bulbs",
        "cutting back the hedge",
        "clearing leaves",
    ],
    "lifts": [
        "lift to the GP surgery",
        "lift to the hospital outpatients",
        "run to the big Tesco",
        "lift to the day centre",
        "lift to the station",
    ],
    "cooking": [
        "batch-cooking soup",
        "Sunday lunch together",
        "baking for the coffee morning",
        "teaching a curry recipe",
    ],
    "tutoring": [
        "English conversation practice",
        "help with a new smartphone",
        "maths homework help",
        "knitting lesson",
        "beginner guitar lesson",
    ],
    "household": [
        "putting up shelves",
        "fixing a dripping tap",
        "assembling a wardrobe",
        "changing light bulbs and smoke alarm battery",
        "sewing repairs",
    ],
    "admin": [
        "help filling in a PIP form",
        "reading and replying to letters",
        "setting up online banking",
        "sorting a council tax query",
    ],
    "wellbeing": [
        "chair yoga session",
        "going along to the gym together",
        "mindful walk by the river",
        "hairdressing at home",
    ],
    "events": [
        "setting up the coffee morning",
        "stall at the summer fair",
        "litter pick along the river",
        "craft afternoon",
    ],
    "other": [
        "dog walking",
        "collecting a prescription",
        "sorting donated books",
        "feeding the cat while away",
    ],
}

# Person-to-agency exchanges: (category, what a member gives, what the agency gives back).
AGENCY_HELP: dict[str, list[tuple[str, str, str]]] = {
    "Maple Court Care Home": [
        ("befriending", "befriending residents at Maple Court", "lunch with the residents"),
        ("events", "helping at the Maple Court tea dance", "a place at the Maple Court tea dance"),
        ("gardening", "tidying the Maple Court garden", "seedlings from the greenhouse"),
    ],
    "Riverside Library": [
        ("tutoring", "running the digital drop-in", "one-to-one computer session"),
        ("events", "helping at the knit and natter group", "room for the repair café"),
        ("other", "sorting the book sale", "home library delivery"),
    ],
    "St Anne's Primary": [
        ("tutoring", "reading with Year 2", "school hall for the community choir"),
        ("gardening", "building raised beds for the school garden", "children's harvest soup"),
        ("events", "running a stall at the school fair", "a seat at the nativity lunch"),
    ],
    "professional": [
        ("befriending", "sharing lived experience at a staff training session", "a welfare visit"),
        ("admin", "helping test the new referral form", "help with a benefits letter"),
        ("events", "co-hosting a community conversation", "a guided walk for newcomers"),
        ("wellbeing", "leading a peer support group", "a wellbeing check-in"),
    ],
}

MINUTES = [30, 45, 60, 90, 120, 180]
MINUTE_WEIGHTS = [10, 8, 30, 18, 14, 5]

REVERSAL_REASONS = [
    "logged twice by mistake",
    "logged against the wrong member",
    "the session was cancelled on the day",
]


@dataclass
class _Person:
    kind: ParticipantKind
    name: str
    joined_on: date
    activity: float
    record: ParticipantRecord | None = None


@dataclass
class _Plan:
    giver: _Person
    receiver: _Person
    minutes: int
    memo: str
    on: date
    fate: str = "post"  # post | approve | pending | void | reverse


def _service_label(day: date) -> str:
    return f"{day.day} {day:%b}"


def _people(rng: random.Random, today: date) -> list[_Person]:
    start = today - timedelta(days=HISTORY_DAYS)
    people = [_Person("organisation", name, start, 1.0) for name in ORGANISATIONS]
    people += [
        _Person("professional", name, start + timedelta(days=rng.randint(0, 30)), 1.0)
        for name in PROFESSIONALS
    ]
    for index, name in enumerate(MEMBERS):
        # A handful of founders in the first fortnight, then a steady trickle of newcomers.
        offset = rng.randint(0, 14) if index < 8 else rng.randint(15, HISTORY_DAYS - 10)
        activity = rng.choice([0.4, 0.7, 1.0, 1.0, 1.5, 2.5])  # some people do a lot more
        people.append(_Person("member", name, start + timedelta(days=offset), activity))
    return people


def _plan(rng: random.Random, people: list[_Person], today: date) -> list[_Plan]:
    members = [p for p in people if p.kind == "member"]
    professionals = [p for p in people if p.kind == "professional"]
    organisations = [p for p in people if p.kind == "organisation"]
    member_weights = [p.activity for p in members]
    plans: list[_Plan] = []
    while len(plans) < EXCHANGES:
        member = rng.choices(members, member_weights)[0]
        flow = rng.random()
        if flow < 0.72:
            other = rng.choices(members, member_weights)[0]
            if other is member:
                continue
            giver, receiver = (member, other) if rng.random() < 0.5 else (other, member)
            category = rng.choice(list(DEFAULT_CATEGORIES))
            help_text = rng.choice(HELP[category])
        else:
            other = rng.choice(professionals if flow < 0.86 else organisations)
            key = other.name if other.kind == "organisation" else "professional"
            category, member_gives, agency_gives = rng.choice(AGENCY_HELP[key])
            if rng.random() < 0.55:
                giver, receiver, help_text = member, other, member_gives
            else:
                giver, receiver, help_text = other, member, agency_gives
        since = max(giver.joined_on, receiver.joined_on)
        on = since + timedelta(days=rng.randint(0, (today - since).days))
        minutes = rng.choices(MINUTES, MINUTE_WEIGHTS)[0]
        memo = f"{CATEGORY_LABELS[category]} — {help_text} ({_service_label(on)})"
        plans.append(_Plan(giver, receiver, minutes, memo, on))
    plans.sort(key=lambda plan: plan.on)

    # Recent exchanges wait for a coordinator's approval (about 10% of all); a few older ones
    # went through approval, a few were rejected (voided) and a few reversed after posting.
    recent = [p for p in plans if (today - p.on).days <= 45]
    for plan in rng.sample(recent, min(len(recent), EXCHANGES // 10)):
        plan.fate = "pending"
    older = [p for p in plans if p.fate == "post"]
    for plan in rng.sample(older, 40):
        plan.fate = "approve"
    for plan in rng.sample([p for p in older if p.fate == "post"], 6):
        plan.fate = "void"
    for plan in rng.sample([p for p in older if p.fate == "post"], 5):
        plan.fate = "reverse"
    return plans


@dataclass
class _Tally:
    posted: int = 0  # exchanges posted and still standing
    approved: int = 0  # of those, posted from a reservation
    pending: int = 0
    voided: int = 0
    reversed: int = 0
    skipped: int = 0
    minutes: int = 0  # minutes of the exchanges that stand
    reasons: int = 0


async def _load_exchange(ledger: Ledger, timebank_id: int, plan: _Plan, tally: _Tally) -> None:
    """Carry out one planned exchange through the ledger, counting what became of it."""
    assert plan.giver.record is not None and plan.receiver.record is not None
    # The giver of a service earns time: debit the receiver, credit the giver.
    args = (timebank_id, plan.receiver.record.account_id, plan.giver.record.account_id)
    try:
        if plan.fate == "post" or plan.fate == "reverse":
            posted = await ledger.post_transfer(*args, plan.minutes, memo=plan.memo)
        else:
            reservation = await ledger.reserve(*args, plan.minutes, memo=plan.memo)
    except LimitExceeded:
        tally.skipped += 1
        return

    if plan.fate == "pending":
        tally.pending += 1
        return
    if plan.fate == "void":
        await ledger.void_pending(timebank_id, reservation.pending.id)
        tally.voided += 1
        return
    if plan.fate == "approve":
        await ledger.post_pending(timebank_id, reservation.pending.id)
        tally.approved += 1
    tally.posted += 1
    tally.minutes += plan.minutes
    if plan.fate != "reverse":
        return

    reason = REVERSAL_REASONS[tally.reasons % len(REVERSAL_REASONS)]
    tally.reasons += 1
    try:
        if reason == "logged twice by mistake":
            # The same exchange logged a second time: the duplicate is reversed, the first stands.
            duplicate = await ledger.post_transfer(*args, plan.minutes, memo=plan.memo)
            await ledger.reverse(timebank_id, duplicate.transfer.id, reason)
        else:
            await ledger.reverse(timebank_id, posted.transfer.id, reason)
            tally.posted -= 1
            tally.minutes -= plan.minutes
    except LimitExceeded:
        return  # the correction would break a limit: leave the exchange as it stands
    tally.reversed += 1


async def load_demo(database_url: str, settings: Settings, *, slug: str, seed: int) -> str:
    """Load the demo timebank ``slug`` (once: if it exists, nothing is loaded) and return a
    short summary of what is in it."""
    engine = create_engine(database_url, settings)
    try:
        participants = Participants(engine)
        ledger = Ledger(engine, max_retries=settings.ledger_max_retries)
        try:
            existing = await participants.get_timebank(slug)
        except NotFound:
            pass
        else:
            return (
                f"Demo timebank '{existing.slug}' ({existing.name}) is already there; "
                "nothing loaded.\nRun `timebank verify` to audit it."
            )
        try:
            timebank = await participants.create_timebank(
                slug, DEMO_NAME, TimebankPolicy(welcome_grant_minutes=WELCOME_GRANT_MINUTES)
            )
        except Conflict:  # created meanwhile by another loader
            return f"Demo timebank '{slug}' is already there; nothing loaded."

        rng = random.Random(seed)  # noqa: S311 - demo data, not security
        today = date.today()
        people = _people(rng, today)
        for person in sorted(people, key=lambda p: p.joined_on):
            person.record = await participants.enrol(
                timebank, person.kind, person.name, joined_on=person.joined_on
            )

        tally = _Tally()
        for plan in _plan(rng, people, today):
            await _load_exchange(ledger, timebank.id, plan, tally)
    finally:
        await engine.dispose()

    kinds = {kind: sum(p.kind == kind for p in people) for kind in _KINDS}
    return "\n".join(
        [
            f"Demo timebank '{timebank.slug}' ({timebank.name}) loaded.",
            f"participants: {kinds['member']} members, {kinds['professional']} professionals,"
            f" {kinds['organisation']} organisations, each welcomed with"
            f" {WELCOME_GRANT_MINUTES} minutes from the community fund",
            f"exchanges: {tally.posted} posted ({tally.approved} of them after approval),"
            f" {tally.pending} pending approval, {tally.voided} voided,"
            f" {tally.reversed} reversed, {tally.skipped} skipped (refused by an account limit)",
            f"hours exchanged: {tally.minutes / 60:.1f} (posted exchanges that stand)",
            "Run `timebank verify` to audit it.",
        ]
    )
