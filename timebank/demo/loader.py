"""Loading the demo timebank through the real services (``timebank demo``).

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
An account that already uses one of the demo's addresses is left as it is (its password too):
the loader acts for it and the summary says so.
"""

from __future__ import annotations

import random
import secrets
from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.auth import repository as auth_repository
from timebank.auth.schemas import LoginResponse, Principal, TimebankAccess
from timebank.auth.secrets import hash_password
from timebank.auth.service import AuthService
from timebank.db.engine import create_engine
from timebank.db.transactions import run_in_transaction
from timebank.demo.data import (
    CANCEL_REASON,
    COORDINATOR,
    DEMO_NAME,
    DISPUTE_DECISIONS,
    DISPUTE_REASONS,
    FUNDER,
    POLICY,
    REJECT_REASONS,
    REVERSAL_REASONS,
)
from timebank.demo.plan import Person, Plan, people_for, plan_exchanges
from timebank.demo.summary import Login, already_there, summary
from timebank.errors import Conflict, LimitExceeded, NotFound, TimebankError
from timebank.exchanges.schemas import ExchangeCreate, ExchangeState, Side
from timebank.exchanges.service import Exchanges
from timebank.participants.schemas import ParticipantCreate, TimebankRecord
from timebank.participants.service import Participants
from timebank.reports.schemas import ContributionReport
from timebank.reports.service import Reports
from timebank.settings import Settings

CLIENT = "timebank-demo"  # the client the loader's own sign-ins are recorded under


def _password() -> str:
    """16 random characters, not starting with a dash (easier to paste into a shell)."""
    while (password := secrets.token_urlsafe(12)).startswith("-"):
        pass
    return password


class Loader:
    """One load of the demo: who is who, and what became of each exchange."""

    def __init__(self, engine: AsyncEngine, settings: Settings, slug: str) -> None:
        self.engine = engine
        self.settings = settings
        self.slug = slug
        self.auth = AuthService(engine, settings)
        self.participants = Participants(engine, settings)
        self.exchanges = Exchanges(engine, max_retries=settings.ledger_max_retries)
        self.logins: list[Login] = []
        self.principals: list[Principal] = []  # the loader's sessions, ended when it is done
        self.states: dict[int, ExchangeState] = {}
        self.service_dates: dict[int, date] = {}
        self.minutes: dict[int, int] = {}
        self.skipped = 0
        self.to_approve: dict[str, list[int]] = {"coordinator": [], "admin": []}
        self.to_reverse: list[tuple[str, int]] = []
        self.managers: dict[str, TimebankAccess] = {}
        self.coordinator: Person | None = None

    # -- people --------------------------------------------------------------------------------

    async def _signed_in(self, session: LoginResponse) -> TimebankAccess:
        principal = await self.auth.authenticate(session.token)
        assert principal is not None
        self.principals.append(principal)
        return await self.auth.access(principal, self.slug)

    async def _existing(self, email: str) -> Principal | None:
        """The account that already uses ``email``, if any: the loader acts for it without
        signing in, so its password stays as it is."""
        async with self.engine.connect() as conn:
            user = await auth_repository.user_by_email(conn, email)
        if user is None:
            return None
        return Principal(
            user_id=user["id"], email=user["email"], is_admin=user["is_admin"], token_id=0
        )

    async def add_admin(self, email: str) -> None:
        existing = await self._existing(email)
        if existing is not None:
            if not existing.is_admin:
                raise Conflict(
                    f"{email} already has an account that is not a site admin; "
                    "load the demo under another --slug"
                )
            self.managers["admin"] = await self.auth.access(existing, self.slug)
            self.logins.append(Login("site admin", email, None, "Site admin"))
            return
        password = _password()
        await self.auth.create_admin(email, password)
        session = await self.auth.login(email, password, CLIENT)
        self.managers["admin"] = await self._signed_in(session)
        self.logins.append(Login("site admin", email, password, "Site admin"))

    async def add_participant(self, person: Person, by: TimebankAccess, role: str) -> None:
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
        if person.email is None or created.invitation_token is None:
            return  # no email: no sign-in
        existing = await self._existing(person.email)
        if existing is not None:  # its owner accepts, as they would signed in
            await self.auth.accept_invitation_as(existing, created.invitation_token)
            person.access = await self.auth.access(existing, self.slug)
            self.logins.append(Login(role, person.email, None, person.name))
            return
        password = _password()
        session = await self.auth.accept_invitation(created.invitation_token, password)
        person.access = await self._signed_in(session)
        self.logins.append(Login(role, person.email, password, person.name))

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

        created = await run_in_transaction(self.engine, work)
        self.logins.append(Login("funder", email, password if created else None, FUNDER))

    # -- exchanges -----------------------------------------------------------------------------

    def _manager(self, plan: Plan) -> str:
        """Who approves and logs on behalf: the coordinator, or the admin when she is a party
        (nobody decides on an exchange they are part of)."""
        return "admin" if self.coordinator in (plan.giver, plan.receiver) else "coordinator"

    async def carry_out(self, plan: Plan) -> None:
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
            return already_there(settings, existing.slug, existing.name)
        try:
            timebank = await participants.create_timebank(slug, DEMO_NAME, POLICY)
        except Conflict:  # created meanwhile by another loader
            return already_there(settings, slug, DEMO_NAME)

        domain = f"{slug}.example"
        rng = random.Random(seed)  # noqa: S311 - demo data, not security
        today = date.today()
        people = people_for(rng, today, domain)
        plans = plan_exchanges(rng, people, today)

        loader = Loader(engine, settings, slug)
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
    return summary(timebank, people, loader, report)
