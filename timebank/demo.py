"""A realistic demo timebank, loaded through the real services (``timebank demo``).

Nothing is written behind the services' backs. A site admin is created and signs in; the
timebank is opened with a policy (the other party confirms, a coordinator approves, everyone
gets welcome hours); the admin adds the coordinator, who adds everyone else. People with an
email get an invitation, which the loader accepts with a freshly generated password, so they
can sign in; a funder is granted the funder role. Exchanges are logged through
:class:`Exchanges` by members who can sign in (the other party confirms or disputes), or by the
coordinator on behalf of those who cannot; the coordinator then approves most, rejects a few and
reverses a few, and leaves some waiting. An exchange an account's limits refuse is skipped.

The same seed gives the same people and plan of exchanges, with dates relative to today; the
passwords are new on every load and printed once, in the summary, never stored anywhere else.
"""

from __future__ import annotations

import random
import secrets
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.auth import repository as auth_repository
from timebank.auth.schemas import LoginResponse, Principal, Role, TimebankAccess
from timebank.auth.secrets import hash_password
from timebank.auth.service import AuthService
from timebank.db.engine import create_engine
from timebank.db.transactions import run_in_transaction
from timebank.errors import Conflict, LimitExceeded, NotFound, TimebankError
from timebank.exchanges.schemas import ExchangeCreate, ExchangeState, Side
from timebank.exchanges.service import Exchanges
from timebank.participants.schemas import (
    DEFAULT_CATEGORIES,
    ParticipantCreate,
    ParticipantKind,
    TimebankPolicy,
    TimebankRecord,
)
from timebank.participants.service import Participants
from timebank.reports.schemas import ContributionReport
from timebank.reports.service import Reports
from timebank.settings import Settings

DEMO_NAME = "Riverside Timebank"
WELCOME_GRANT_MINUTES = 120
HISTORY_DAYS = 240  # about eight months
EXCHANGES = 300
POLICY = TimebankPolicy(
    welcome_grant_minutes=WELCOME_GRANT_MINUTES,
    confirmation_required=True,
    approval_mode="coordinator",
)
CLIENT = "timebank-demo"  # the client the loader's own sign-ins are recorded under

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
    "Priya (local area co-ordinator)",  # the coordinator
    "Tom (care home co-ordinator)",
    "Janet (library outreach worker)",
    "Kwame (social prescriber)",
    "Siân (school family liaison)",
]
ORGANISATIONS = [
    "Maple Court Care Home",
    "Riverside Library",
    "St Anne's Primary",
]

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

COORDINATOR = PROFESSIONALS[0]
FUNDER = "Riverside Community Foundation"
# Members who sign in and log their own hours; the coordinator logs for everyone else.
MEMBERS_WITH_LOGIN = (
    "Margaret Evans",
    "Tariq Hussain",
    "Aisha Begum",
    "Grace Okafor",
    "Dylan Jones",
    "Harpreet Kaur",
    "Kofi Mensah",
    "Chloe Thompson",
)

MINUTES = [30, 45, 60, 90, 120, 180]
MINUTE_WEIGHTS = [10, 8, 30, 18, 14, 5]

# How many exchanges end up where (out of about EXCHANGES); the rest are approved.
AWAITING_APPROVAL = 20  # recent, confirmed, waiting for the coordinator
AWAITING_CONFIRMATION = 3  # recent, logged by a member, the other party has not confirmed yet
DISPUTED = 5  # the other party disputed; the coordinator has not decided yet
REJECTED = 3
CANCELLED = 3
REVERSED = 5

DISPUTE_REASONS = [
    "it was an hour, not an hour and a half",
    "that visit moved to the following week",
    "we did this at the group session, not one to one",
    "I gave this help, not the other way round",
    "I don't think this happened; can we talk?",
]
REJECT_REASONS = [
    "paid work, not a timebank exchange",
    "already logged by the other party",
    "outside what the timebank covers",
]
DISPUTE_DECISIONS = {
    "dispute_reject": "spoke to both: this visit did not take place",
    "dispute_approve": "spoke to both: the hours stand as logged",
}
CANCEL_REASON = "logged by mistake"
REVERSAL_REASONS = [
    "logged against the wrong member",
    "the session was cancelled on the day",
    "paid work, not a timebank exchange",
    "already counted in a group session",
]

STATE_LABELS: dict[ExchangeState, str] = {
    "approved": "approved",
    "awaiting_approval": "awaiting approval",
    "logged": "awaiting confirmation",
    "disputed": "disputed",
    "rejected": "rejected",
    "cancelled": "cancelled",
    "reversed": "reversed",
}


@dataclass(eq=False)
class _Person:
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
class _Plan:
    giver: _Person
    receiver: _Person
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


@dataclass(frozen=True)
class _Login:
    role: str
    email: str
    password: str
    name: str


def _password() -> str:
    """16 random characters, not starting with a dash (easier to paste into a shell)."""
    while (password := secrets.token_urlsafe(12)).startswith("-"):
        pass
    return password


def _email(name: str, domain: str) -> str:
    """``priya@riverside.example`` from ``Priya (local area co-ordinator)``."""
    first = unicodedata.normalize("NFKD", name.split()[0]).encode("ascii", "ignore").decode()
    return f"{''.join(c for c in first.lower() if c.isalnum())}@{domain}"


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def _people(rng: random.Random, today: date, domain: str) -> list[_Person]:
    start = today - timedelta(days=HISTORY_DAYS)
    people = [_Person("organisation", name, start, 1.0) for name in ORGANISATIONS]
    for name in PROFESSIONALS:
        if name == COORDINATOR:  # she started the timebank
            people.append(
                _Person(
                    "professional",
                    name,
                    start,
                    1.0,
                    email=_email(name, domain),
                    roles=["coordinator", "member"],
                )
            )
        else:
            joined = start + timedelta(days=rng.randint(0, 30))
            people.append(_Person("professional", name, joined, 1.0))
    for index, name in enumerate(MEMBERS):
        # A handful of founders in the first fortnight, then a steady trickle of newcomers.
        offset = rng.randint(0, 14) if index < 8 else rng.randint(15, HISTORY_DAYS - 10)
        activity = rng.choice([0.4, 0.7, 1.0, 1.0, 1.5, 2.5])  # some people do a lot more
        person = _Person("member", name, start + timedelta(days=offset), activity)
        if name in MEMBERS_WITH_LOGIN:  # those who sign in tend to be the keenest
            person.email, person.activity = _email(name, domain), max(activity, 1.5)
        people.append(person)
    return people


def _plan(rng: random.Random, people: list[_Person], today: date) -> list[_Plan]:
    members = [p for p in people if p.kind == "member"]
    professionals = [p for p in people if p.kind == "professional"]
    organisations = [p for p in people if p.kind == "organisation"]
    member_weights = [p.activity for p in members]
    signing_in = [p for p in members if p.signs_in]
    plans: list[_Plan] = []
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
            _Plan(
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


def _keep_within_limits(plans: list[_Plan], people: list[_Person]) -> None:
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


def _assign_fates(rng: random.Random, plans: list[_Plan], today: date) -> None:
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


class _Loader:
    """One load of the demo: who is who, and what became of each exchange."""

    def __init__(self, engine: AsyncEngine, settings: Settings, slug: str) -> None:
        self.engine = engine
        self.settings = settings
        self.slug = slug
        self.auth = AuthService(engine, settings)
        self.participants = Participants(engine, settings)
        self.exchanges = Exchanges(engine, max_retries=settings.ledger_max_retries)
        self.logins: list[_Login] = []
        self.principals: list[Principal] = []  # the loader's sessions, ended when it is done
        self.states: dict[int, ExchangeState] = {}
        self.service_dates: dict[int, date] = {}
        self.minutes: dict[int, int] = {}
        self.skipped = 0
        self.to_approve: dict[str, list[int]] = {"coordinator": [], "admin": []}
        self.to_reverse: list[tuple[str, int]] = []
        self.managers: dict[str, TimebankAccess] = {}
        self.coordinator: _Person | None = None

    # -- people --------------------------------------------------------------------------------

    async def _signed_in(self, session: LoginResponse) -> TimebankAccess:
        principal = await self.auth.authenticate(session.token)
        assert principal is not None
        self.principals.append(principal)
        return await self.auth.access(principal, self.slug)

    async def add_admin(self, email: str) -> None:
        password = _password()
        await self.auth.create_admin(email, password)
        session = await self.auth.login(email, password, CLIENT)
        self.managers["admin"] = await self._signed_in(session)
        self.logins.append(_Login("site admin", email, password, "Site admin"))

    async def add_participant(self, person: _Person, by: TimebankAccess, role: str) -> None:
        created = await self.participants.add_participant(
            by,
            ParticipantCreate(
                display_name=person.name,
                kind=person.kind,
                email=person.email,
                roles=person.roles,
                joined_on=person.joined_on,
            ),
        )
        person.id = created.id
        if created.invitation_token is None:
            return  # no email (or a user who already has a password): no sign-in to print
        password = _password()
        session = await self.auth.accept_invitation(created.invitation_token, password)
        person.access = await self._signed_in(session)
        assert person.email is not None
        self.logins.append(_Login(role, person.email, password, person.name))

    async def add_funder(self, timebank: TimebankRecord, email: str) -> None:
        """A user with the funder role and no participant: funders see aggregates, they do
        not exchange. No service method grants a role without a participant, so this is the
        one step taken with the auth repository, in one transaction, as the services do."""
        password = _password()
        password_hash = hash_password(password)

        async def work(conn: AsyncConnection) -> bool:
            user = await auth_repository.user_by_email(conn, email)
            created = user is None
            user_id = (
                await auth_repository.insert_user(
                    conn, email=email, display_name=FUNDER, password_hash=password_hash
                )
                if user is None
                else user["id"]
            )
            await auth_repository.grant_role(conn, timebank.id, user_id, "funder")
            return created

        if await run_in_transaction(self.engine, work):
            self.logins.append(_Login("funder", email, password, FUNDER))

    # -- exchanges -----------------------------------------------------------------------------

    def _manager(self, plan: _Plan) -> str:
        """Who approves and logs on behalf: the coordinator, or the admin when she is a party
        (nobody decides on an exchange they are part of)."""
        return "admin" if self.coordinator in (plan.giver, plan.receiver) else "coordinator"

    async def carry_out(self, plan: _Plan) -> None:
        """Log one planned exchange the way it would be in life, then take its decisions."""
        giver, receiver = plan.giver, plan.receiver
        manager = self._manager(plan)
        logged_for: Side | None = None
        if giver.access is not None and receiver.access is not None:
            author = giver.access if plan.giver_logs else receiver.access
            other = receiver.access if plan.giver_logs else giver.access
        else:  # the coordinator logs for whoever cannot (no confirmation needed then)
            author, other = self.managers[manager], None
            if giver.access is None and receiver.access is None:
                logged_for = "giver" if plan.giver_logs else "receiver"
            else:
                logged_for = "giver" if giver.access is None else "receiver"
        data = ExchangeCreate(
            giver_id=giver.id,
            receiver_id=receiver.id,
            minutes=plan.minutes,
            service_date=plan.on,
            category=plan.category,
            description=plan.description,
            logged_for=logged_for,
        )
        try:
            logged = (await self.exchanges.log(author, data)).exchange
        except LimitExceeded:
            self.skipped += 1
            return
        exchange_id, state = logged.id, logged.state
        self.service_dates[exchange_id] = plan.on
        self.minutes[exchange_id] = plan.minutes
        fate = plan.fate

        if state == "logged" and other is not None and fate != "unconfirmed":
            if fate.startswith("dispute"):
                reason = DISPUTE_REASONS[len(self.states) % len(DISPUTE_REASONS)]
                state = (await self.exchanges.decide(other, exchange_id, "dispute", reason)).state
            else:
                state = (await self.exchanges.decide(other, exchange_id, "confirm")).state

        decider = self.managers[manager]
        if fate in DISPUTE_DECISIONS:
            action = "reject" if fate == "dispute_reject" else "approve"
            reason = DISPUTE_DECISIONS[fate]
            state = (await self.exchanges.decide(decider, exchange_id, action, reason)).state
        elif fate == "reject":
            reason = REJECT_REASONS[len(self.states) % len(REJECT_REASONS)]
            state = (await self.exchanges.decide(decider, exchange_id, "reject", reason)).state
        elif fate == "cancel":  # whoever logged it takes it back
            state = (
                await self.exchanges.decide(author, exchange_id, "cancel", CANCEL_REASON)
            ).state
        elif fate in ("approve", "reverse"):
            self.to_approve[manager].append(exchange_id)
            if fate == "reverse":
                self.to_reverse.append((manager, exchange_id))
        self.states[exchange_id] = state

    async def approve_queued(self) -> None:
        """Approve what is queued, a page at a time, as on the approvals screen. (Until
        approved, an exchange holds its minutes: what a member is owed does not count
        towards their floor, what they owe does.)"""
        for manager, ids in self.to_approve.items():
            for first in range(0, len(ids), 100):
                result = await self.exchanges.approve_many(
                    self.managers[manager], ids[first : first + 100]
                )
                for outcome in result.results:
                    if outcome.error is not None:
                        raise RuntimeError(f"exchange {outcome.id}: {outcome.error.detail}")
                    assert outcome.state is not None
                    self.states[outcome.id] = outcome.state
            ids.clear()

    async def reverse_queued(self) -> None:
        for number, (manager, exchange_id) in enumerate(self.to_reverse):
            reason = REVERSAL_REASONS[number % len(REVERSAL_REASONS)]
            try:
                detail = await self.exchanges.decide(
                    self.managers[manager], exchange_id, "reverse", reason
                )
            except LimitExceeded:
                continue  # the correction would break a limit: the exchange stands
            self.states[exchange_id] = detail.state

    async def report(self, start: date, end: date) -> ContributionReport:
        """The contribution report as the coordinator sees it, counting up to this moment."""
        no_settling = self.settings.model_copy(update={"report_settle_seconds": 0})
        return await Reports(self.engine, no_settling).contribution(
            self.managers["coordinator"], start=start, end=end
        )

    async def sign_out(self) -> None:
        for principal in self.principals:
            try:
                await self.auth.logout(principal)
            except TimebankError:
                pass


async def load_demo(database_url: str, settings: Settings, *, slug: str, seed: int) -> str:
    """Load the demo timebank ``slug`` (once: if it exists, nothing is loaded) and return a
    summary of what is in it, with the sign-ins (passwords generated now, shown only here)."""
    engine = create_engine(database_url, settings)
    try:
        participants = Participants(engine, settings)
        try:
            existing = await participants.get_timebank(slug)
        except NotFound:
            pass
        else:
            return _already_there(existing.slug, existing.name)
        try:
            timebank = await participants.create_timebank(slug, DEMO_NAME, POLICY)
        except Conflict:  # created meanwhile by another loader
            return _already_there(slug, DEMO_NAME)

        domain = f"{slug}.example"
        rng = random.Random(seed)  # noqa: S311 - demo data, not security
        today = date.today()
        people = _people(rng, today, domain)
        plans = _plan(rng, people, today)

        loader = _Loader(engine, settings, slug)
        try:
            await loader.add_admin(f"admin@{domain}")
            coordinator = next(p for p in people if p.name == COORDINATOR)
            loader.coordinator = coordinator
            await loader.add_participant(coordinator, loader.managers["admin"], "coordinator")
            assert coordinator.access is not None, "the coordinator could not be invited"
            loader.managers["coordinator"] = coordinator.access
            await loader.add_funder(timebank, f"funder@{domain}")
            for person in sorted(people, key=lambda p: p.joined_on):
                if person is not coordinator:
                    await loader.add_participant(person, coordinator.access, "member")
            week = None
            for plan in plans:
                if plan.on.isocalendar()[:2] != week:  # the coordinator's weekly approvals
                    await loader.approve_queued()
                    week = plan.on.isocalendar()[:2]
                await loader.carry_out(plan)
            await loader.approve_queued()
            await loader.reverse_queued()
            start = min(p.joined_on for p in people)
            report = await loader.report(start, today)
        finally:
            await loader.sign_out()
    finally:
        await engine.dispose()
    return _summary(timebank, people, loader, report)


def _already_there(slug: str, name: str) -> str:
    return "\n".join(
        [
            f"Demo timebank '{slug}' ({name}) is already there; nothing loaded.",
            "Its passwords were printed when it was loaded; to set the admin's again:"
            f" `timebank admin create --email admin@{slug}.example`.",
            "Run `timebank verify` to audit it, or `timebank demo --slug OTHER` for another.",
        ]
    )


def _summary(
    timebank: TimebankRecord, people: Sequence[_Person], loader: _Loader, report: ContributionReport
) -> str:
    kinds = Counter(p.kind for p in people)
    states = Counter(loader.states.values())
    dates = sorted(loader.service_dates.values())
    months = len({(d.year, d.month) for d in dates})
    joined = sorted(p.joined_on for p in people)
    approved_minutes = sum(
        loader.minutes[i] for i, state in loader.states.items() if state == "approved"
    )
    by_state = ", ".join(
        f"{states[state]} {label}" for state, label in STATE_LABELS.items() if states[state]
    )
    totals = report.totals
    width = max(len(login.email) for login in loader.logins)
    coordinator = next(login for login in loader.logins if login.role == "coordinator")
    base = f"http://{loader.settings.host}:{loader.settings.port}"
    api = f"{base}/api/v1/timebanks/{timebank.slug}"
    lines = [
        f"Demo timebank '{timebank.slug}' ({timebank.name}) loaded.",
        "policy: the other party confirms, a coordinator approves;"
        f" {WELCOME_GRANT_MINUTES} welcome minutes for everyone from the community fund",
        f"participants: {kinds['member']} members, {kinds['professional']} professionals,"
        f" {kinds['organisation']} organisations, joined {_day(joined[0])} to {_day(joined[-1])}",
        f"exchanges: {len(loader.states)} logged, service dates {_day(dates[0])} to"
        f" {_day(dates[-1])} ({months} months)",
        f"  {by_state}"
        + (f"; {loader.skipped} skipped (an account limit refused them)" if loader.skipped else ""),
        f"hours: {approved_minutes / 60:.2f} in approved exchanges; the contribution report"
        f" counts {totals.hours:.2f} hours, {totals.active} of {totals.participants} participants"
        f" active, {totals.reciprocal} who both gave and received",
        "",
        "Sign in with these (passwords generated just now and shown only this once):",
        *(
            f"  {login.role:<12} {login.email:<{width}}  {login.password}  {login.name}"
            for login in loader.logins
        ),
        "",
        "Next:",
        "  timebank serve     then sign in (here as the coordinator) at POST /api/v1/auth/login:",
        f"                       curl -s {base}/api/v1/auth/login"
        " -H 'Content-Type: application/json' \\",
        f'                         -d \'{{"email": "{coordinator.email}",'
        f' "password": "{coordinator.password}"}}\'',
        '                     and send the token back as "Authorization: Bearer <token>" to',
        f"                       {api}/exchanges?state=awaiting_approval",
        f"                       {api}/reports/contribution",
        "  timebank verify    audits the ledger",
    ]
    return "\n".join(lines)
