"""A Hypothesis state machine over the exchange workflow (DESIGN.md §2, §6), through the service
layer on real PostgreSQL.

Random actors (two members, a coordinator, a member of another timebank) log, confirm, dispute,
approve, reject, cancel and reverse exchanges among two members and an organisation, under a
random policy of the timebank, sometimes retrying a log under the same idempotency key. A plain
in-memory model predicts each outcome (the new state and balances, or exactly which typed error
the service must raise). After every step the exchanges, their decision histories and the
accounts are compared with the model, and the ledger audit must find nothing.

The service is async and Hypothesis's state machines are sync, so the machine drives it on an
event loop and engine of its own (as tests/property/test_ledger_machine.py does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.exchanges.conftest import set_policy
from tests.people import Person, World, make_person, make_world
from timebank.auth.schemas import Principal, TimebankAccess
from timebank.auth.service import AuthService
from timebank.db.engine import sqlalchemy_url
from timebank.errors import (
    Forbidden,
    IdempotencyMismatch,
    InvalidTransition,
    LimitExceeded,
    NotFound,
    TimebankError,
    ValidationFailed,
)
from timebank.exchanges.schemas import ExchangeCreate, ExchangeDetail
from timebank.exchanges.service import Exchanges
from timebank.ledger.audit import audit
from timebank.participants.schemas import TimebankPolicy
from timebank.settings import Settings

T = TypeVar("T")

FLOOR = -300
CEILING = 360
MAXIMUM = 240  # minutes per exchange
ACTORS = ("ada", "bea", "coordinator", "stranger")
PARTIES = ("ada", "bea", "org")  # two members and an organisation (no one signs in as it)
ACTIONS = ("confirm", "dispute", "approve", "reject", "cancel", "reverse")
KEYS = ("tap-1", "tap-2", "tap-3")

MACHINE_SETTINGS = settings(
    max_examples=20,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# ---------------------------------------------------------------------------------------------
# The event loop, engine and services the machine drives (one set for the whole module).
# ---------------------------------------------------------------------------------------------


@dataclass
class Runtime:
    loop: asyncio.AbstractEventLoop
    engine: AsyncEngine
    exchanges: Exchanges
    auth: AuthService
    foreign_exchange_id: int  # an exchange of another timebank: never found from ours

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)


RUNTIME: Runtime | None = None


async def _access(auth: AuthService, person: Person, slug: str) -> TimebankAccess:
    principal = Principal(user_id=person.user_id, email=person.email, is_admin=False, token_id=0)
    return await auth.access(principal, slug)


async def _foreign_exchange(engine: AsyncEngine, exchanges: Exchanges, auth: AuthService) -> int:
    world = await make_world(engine)
    access = await _access(auth, world.coordinator, world.timebank.slug)
    logged = await exchanges.log(
        access,
        ExchangeCreate(
            giver_id=world.member.participant_id,
            receiver_id=world.other_member.participant_id,
            minutes=30,
            service_date=date.today(),
            category="other",
        ),
    )
    return logged.exchange.id


@pytest.fixture(scope="module")
def workflow_runtime(database_url: str) -> Iterator[Runtime]:
    global RUNTIME
    loop = asyncio.new_event_loop()
    engine = create_async_engine(sqlalchemy_url(database_url), pool_size=3, max_overflow=2)
    try:
        exchanges = Exchanges(engine)
        auth = AuthService(engine, Settings())
        foreign = loop.run_until_complete(_foreign_exchange(engine, exchanges, auth))
        RUNTIME = Runtime(loop, engine, exchanges, auth, foreign)
        yield RUNTIME
    finally:
        RUNTIME = None
        loop.run_until_complete(engine.dispose())
        loop.close()


# ---------------------------------------------------------------------------------------------
# The plain model.
# ---------------------------------------------------------------------------------------------


@dataclass
class Account:
    balance: int = 0
    pending_in: int = 0
    pending_out: int = 0

    def refuses(self, *, out: int = 0, into: int = 0) -> bool:
        """Whether ``out`` more minutes out of it (or ``into`` it) breaks a limit (I5)."""
        return self.balance - self.pending_out - out < FLOOR or (
            self.balance + self.pending_in + into > CEILING
        )


@dataclass(frozen=True)
class LogRequest:
    """A log as sent: equal exactly when the service's request hash is equal."""

    giver: str
    receiver: str
    minutes: int
    days_ago: int
    logged_for: str | None


@dataclass
class Exchange:
    id: int
    giver: str
    receiver: str
    minutes: int
    service_date: date
    logged_by: str
    on_behalf: bool
    logged_for: str
    state: str
    review_reason: str | None = None
    actions: list[str] = field(default_factory=list)

    @property
    def parties(self) -> tuple[str, str]:
        return (self.giver, self.receiver)

    @property
    def counterparty(self) -> str:
        return self.receiver if self.logged_for == "giver" else self.giver


@dataclass(frozen=True)
class Policy:
    confirmation_required: bool
    approval_mode: str
    review_above_minutes: int | None
    review_backdated_days: int | None
    review_organisation: bool
    review_first_exchange: bool


policies = st.builds(
    Policy,
    confirmation_required=st.sampled_from([True, True, False]),
    approval_mode=st.sampled_from(["coordinator", "automatic", "automatic_unless"]),
    review_above_minutes=st.sampled_from([None, 60, 120]),
    review_backdated_days=st.sampled_from([None, 0, 3]),
    review_organisation=st.booleans(),
    review_first_exchange=st.booleans(),
)
minutes_values = st.one_of(
    st.integers(1, 60), st.integers(61, MAXIMUM), st.integers(MAXIMUM + 1, MAXIMUM + 30)
)
reasons = st.sampled_from([None, "  ", "it was shorter", "logged twice"])
reasons_given = st.sampled_from(["it was shorter", "logged twice", "checked with both"])
weighted_actors = st.sampled_from([*ACTORS[:3], *ACTORS[:3], "stranger"])


class ExchangeWorkflow(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        assert RUNTIME is not None, "use the workflow_runtime fixture"
        self.rt = RUNTIME
        self.world: World | None = None
        self.policy: Policy | None = None
        self.people: dict[str, Person] = {}
        self.participant_ids: dict[str, int] = {}
        self.accounts: dict[str, Account] = {name: Account() for name in PARTIES}
        self.exchanges: dict[int, Exchange] = {}
        self.keys: dict[tuple[str, str], tuple[LogRequest, int]] = {}
        self.transfers = 0

    # -- set-up ---------------------------------------------------------------------------------

    @initialize(policy=policies)
    def open_a_timebank(self, policy: Policy) -> None:
        async def create() -> tuple[World, Person]:
            world = await make_world(
                self.rt.engine,
                TimebankPolicy(
                    default_floor_minutes=FLOOR,
                    default_ceiling_minutes=CEILING,
                    max_exchange_minutes=MAXIMUM,
                    welcome_grant_minutes=0,
                ),
            )
            org = await make_person(
                self.rt.engine,
                "care-home",
                timebank=world.timebank,
                roles=("member",),
                kind="organisation",
            )
            await set_policy(
                self.rt.engine,
                world.timebank.id,
                confirmation_required=policy.confirmation_required,
                approval_mode=policy.approval_mode,
                review_above_minutes=policy.review_above_minutes,
                review_backdated_days=policy.review_backdated_days,
                review_organisation=policy.review_organisation,
                review_first_exchange=policy.review_first_exchange,
            )
            return world, org

        world, org = self.rt.run(create())
        self.world, self.policy = world, policy
        self.people = {
            "ada": world.member,
            "bea": world.other_member,
            "coordinator": world.coordinator,
            "stranger": world.stranger_member,
        }
        self.participant_ids = {
            "ada": world.member.participant_id,
            "bea": world.other_member.participant_id,
            "org": org.participant_id,
        }
        event(f"policy: {policy.approval_mode}, confirmation {policy.confirmation_required}")

    # -- the model's predictions ---------------------------------------------------------------

    def is_member(self, actor: str) -> bool:
        return actor in ("ada", "bea")

    def review_reasons(self, giver: str, receiver: str, minutes: int, service_date: date):
        policy = self.policy
        assert policy is not None
        if policy.approval_mode != "automatic_unless":
            return []
        found = []
        if policy.review_above_minutes is not None and minutes > policy.review_above_minutes:
            found.append(f"more than {policy.review_above_minutes} minutes")
        days = (date.today() - service_date).days
        if policy.review_backdated_days is not None and days > policy.review_backdated_days:
            found.append(f"backdated more than {policy.review_backdated_days} days")
        if policy.review_organisation and "org" in (giver, receiver):
            found.append("involves an organisation")
        if policy.review_first_exchange and any(
            not any(e.state == "approved" and p in e.parties for e in self.exchanges.values())
            for p in (giver, receiver)
        ):
            found.append("a participant's first exchange")
        return found

    def approves_automatically(self, found: list[str]) -> bool:
        assert self.policy is not None
        mode = self.policy.approval_mode
        return mode == "automatic" or (mode == "automatic_unless" and not found)

    def enter_awaiting_approval(self, exchange: Exchange) -> None:
        """The policy's say once an exchange awaits approval: hold it, or approve it."""
        found = self.review_reasons(
            exchange.giver, exchange.receiver, exchange.minutes, exchange.service_date
        )
        exchange.state = "awaiting_approval"
        exchange.review_reason = "; ".join(found) or None
        if self.approves_automatically(found):
            self.post(exchange)
            exchange.actions.append("auto_approve")

    def post(self, exchange: Exchange) -> None:
        giver, receiver = self.accounts[exchange.giver], self.accounts[exchange.receiver]
        giver.pending_in -= exchange.minutes
        giver.balance += exchange.minutes
        receiver.pending_out -= exchange.minutes
        receiver.balance -= exchange.minutes
        exchange.state = "approved"
        self.transfers += 1

    def release(self, exchange: Exchange, state: str) -> None:
        self.accounts[exchange.giver].pending_in -= exchange.minutes
        self.accounts[exchange.receiver].pending_out -= exchange.minutes
        exchange.state = state

    # -- sending requests ---------------------------------------------------------------------

    async def access(self, actor: str) -> TimebankAccess:
        assert self.world is not None
        return await _access(self.rt.auth, self.people[actor], self.world.timebank.slug)

    def send(self, expected: type[TimebankError] | None, coro_factory) -> Any:
        """Run one request; assert it fails with exactly ``expected`` (or succeeds)."""
        try:
            result = self.rt.run(coro_factory())
        except TimebankError as exc:
            assert type(exc) is expected, (
                f"expected {expected.__name__ if expected else 'success'}, the service raised "
                f"{type(exc).__name__}: {exc.detail}"
            )
            return None
        assert expected is None, f"expected {expected.__name__}, the service accepted it"
        return result

    # -- rules ---------------------------------------------------------------------------------

    @rule(
        actor=weighted_actors,
        giver=st.sampled_from(PARTIES),
        receiver=st.sampled_from(PARTIES),
        minutes=minutes_values,
        days_ago=st.integers(0, 6),
        logged_for=st.sampled_from([None, None, "giver", "receiver"]),
        key=st.sampled_from([None, None, *KEYS]),
    )
    def log_anything(self, actor, giver, receiver, minutes, days_ago, logged_for, key) -> None:
        """Anyone logs any exchange, valid or not, sometimes under a key used before."""
        self.submit_log(actor, giver, receiver, minutes, days_ago, logged_for, key)

    def submit_log(self, actor, giver, receiver, minutes, days_ago, logged_for, key) -> None:
        request = LogRequest(giver, receiver, minutes, days_ago, logged_for)
        expected, replay_of = self.predict_log(actor, request, key)
        outcome = expected.__name__ if expected else "replay" if replay_of else "new"
        event(f"log: {outcome}")
        ids = self.participant_ids
        body = ExchangeCreate(
            giver_id=ids[giver],
            receiver_id=ids[receiver],
            minutes=minutes,
            service_date=date.today() - timedelta(days=days_ago),
            category="befriending",
            description="Tea and a chat",
            logged_for=logged_for,
        )

        async def call():
            return await self.rt.exchanges.log(await self.access(actor), body, key)

        result = self.send(expected, call)
        if result is None:
            return
        if replay_of is not None:
            assert result.replayed and result.exchange.id == replay_of
            return
        assert not result.replayed
        self.record_new(actor, request, result.exchange)
        if key is not None:
            self.keys[(actor, key)] = (request, result.exchange.id)

    def predict_log(
        self, actor: str, request: LogRequest, key: str | None
    ) -> tuple[type[TimebankError] | None, int | None]:
        if actor == "stranger":
            return NotFound, None
        if self.is_member(actor):
            if actor not in (request.giver, request.receiver):
                return Forbidden, None
            side = "giver" if actor == request.giver else "receiver"
            if request.logged_for not in (None, side):
                return ValidationFailed, None
        if request.giver == request.receiver:
            return ValidationFailed, None
        if key is not None and (actor, key) in self.keys:
            stored, exchange_id = self.keys[(actor, key)]
            return (None, exchange_id) if stored == request else (IdempotencyMismatch, None)
        if request.minutes > MAXIMUM:
            return ValidationFailed, None
        if self.accounts[request.receiver].refuses(out=request.minutes) or self.accounts[
            request.giver
        ].refuses(into=request.minutes):
            return LimitExceeded, None
        return None, None

    def record_new(self, actor: str, request: LogRequest, logged: ExchangeDetail) -> None:
        assert self.policy is not None
        assert logged.id not in self.exchanges
        on_behalf = not self.is_member(actor)
        if on_behalf:
            logged_for = request.logged_for or "giver"
        else:
            logged_for = "giver" if actor == request.giver else "receiver"
        exchange = Exchange(
            id=logged.id,
            giver=request.giver,
            receiver=request.receiver,
            minutes=request.minutes,
            service_date=date.today() - timedelta(days=request.days_ago),
            logged_by=actor,
            on_behalf=on_behalf,
            logged_for=logged_for,
            state="logged",
            actions=["log"],
        )
        self.exchanges[exchange.id] = exchange
        self.accounts[request.giver].pending_in += request.minutes
        self.accounts[request.receiver].pending_out += request.minutes
        # A party's log that debits the other party (the giver's) always waits for them.
        if on_behalf or (not self.policy.confirmation_required and logged_for == "receiver"):
            self.enter_awaiting_approval(exchange)
        assert logged.state == exchange.state, (logged.state, exchange)

    @rule(
        actor=st.sampled_from(PARTIES).flatmap(
            lambda giver: st.tuples(
                st.just(giver), st.sampled_from([p for p in PARTIES if p != giver])
            )
        ),
        minutes=st.integers(1, 120),
        days_ago=st.integers(0, 6),
        key=st.sampled_from([None, None, *KEYS]),
        as_giver=st.booleans(),
        by_coordinator=st.sampled_from([False, False, True]),
    )
    def log_as_a_party(self, actor, minutes, days_ago, key, as_giver, by_coordinator) -> None:
        """A log that is mostly accepted: by one of the parties, or a coordinator for them."""
        giver, receiver = actor
        member = giver if as_giver else receiver
        who = "coordinator" if by_coordinator or member == "org" else member
        self.submit_log(who, giver, receiver, minutes, days_ago, None, key)

    @rule(actor=weighted_actors, action=st.sampled_from(ACTIONS), reason=reasons, data=st.data())
    def decide(self, actor: str, action: str, reason: str | None, data: st.DataObject) -> None:
        """Anyone tries any decision on any exchange (ours, or one of another timebank)."""
        known = sorted(self.exchanges)
        choices = st.sampled_from(known) if known else st.nothing()
        exchange_id = data.draw(
            st.one_of(choices, choices, choices, st.just(self.rt.foreign_exchange_id)),
            label="exchange",
        )
        self.attempt(actor, action, reason, exchange_id)

    @precondition(lambda self: self.exchanges)
    @rule(data=st.data(), reason=reasons_given)
    def decide_as_the_workflow_expects(self, data: st.DataObject, reason: str) -> None:
        """The person whose turn it is takes a decision the exchange's state allows."""
        exchange = self.exchanges[data.draw(st.sampled_from(sorted(self.exchanges)))]
        author = "coordinator" if exchange.on_behalf else exchange.logged_by
        turns = {
            "logged": [
                (exchange.counterparty, "confirm"),
                (exchange.counterparty, "dispute"),
                (author, "cancel"),
            ],
            "awaiting_approval": [
                ("coordinator", "approve"),
                ("coordinator", "reject"),
                (author, "cancel"),
            ],
            "disputed": [("coordinator", "approve"), ("coordinator", "reject")],
            "approved": [("coordinator", "reverse")],
        }.get(exchange.state, [("coordinator", action) for action in ACTIONS])
        actor, action = data.draw(
            st.sampled_from([(who, what) for who, what in turns if who != "org"] or turns)
        )
        if actor == "org":  # nobody signs in as the organisation: a coordinator acts instead
            actor = "coordinator"
        self.attempt(actor, action, reason, exchange.id)

    def attempt(self, actor: str, action: str, reason: str | None, exchange_id: int) -> None:
        exchange = self.exchanges.get(exchange_id)
        expected = self.predict_decision(actor, action, reason, exchange)
        event(f"{action}: {expected.__name__ if expected else 'done'}")

        async def call():
            return await self.rt.exchanges.decide(
                await self.access(actor), exchange_id, action, reason
            )

        result = self.send(expected, call)
        if result is None:
            return
        assert exchange is not None
        self.apply_decision(action, exchange)
        assert result.state == exchange.state, (result.state, exchange)

    def predict_decision(
        self, actor: str, action: str, reason: str | None, exchange: Exchange | None
    ) -> type[TimebankError] | None:
        if actor == "stranger":
            return NotFound
        member = self.is_member(actor)
        if action in ("approve", "reject", "reverse") and member:
            return Forbidden
        if action in ("confirm", "dispute") and not member:
            return Forbidden
        if action in ("dispute", "reverse") and not (reason or "").strip():
            return ValidationFailed
        if exchange is None or (member and actor not in exchange.parties):
            return NotFound
        if action in ("confirm", "dispute") and actor != exchange.counterparty:
            return Forbidden
        if action == "cancel" and exchange.logged_by != actor and member:
            return Forbidden
        allowed = {
            "confirm": {"logged"},
            "dispute": {"logged"},
            "approve": {"awaiting_approval", "disputed"},
            "reject": {"awaiting_approval", "disputed"},
            "cancel": {"logged", "awaiting_approval"},
            "reverse": {"approved"},
        }[action]
        if exchange.state not in allowed:
            return InvalidTransition
        if action == "reverse" and (
            self.accounts[exchange.giver].refuses(out=exchange.minutes)
            or self.accounts[exchange.receiver].refuses(into=exchange.minutes)
        ):
            return LimitExceeded
        return None

    def apply_decision(self, action: str, exchange: Exchange) -> None:
        exchange.actions.append(action)
        match action:
            case "confirm":
                self.enter_awaiting_approval(exchange)
            case "dispute":
                exchange.state = "disputed"
            case "approve":
                self.post(exchange)
            case "reject":
                self.release(exchange, "rejected")
            case "cancel":
                self.release(exchange, "cancelled")
            case "reverse":
                giver, receiver = self.accounts[exchange.giver], self.accounts[exchange.receiver]
                giver.balance -= exchange.minutes
                receiver.balance += exchange.minutes
                exchange.state = "reversed"
                self.transfers += 1

    # -- invariants, checked against the database after every step ------------------------------

    async def read_database(self) -> dict[str, Any]:
        assert self.world is not None
        params = {"tb": self.world.timebank.id}
        async with self.rt.engine.connect() as conn:
            report = await audit(conn, self.world.timebank.slug)
        async with self.rt.engine.connect() as conn:
            await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))

            async def rows(sql: str) -> list[Any]:
                return list(await conn.execute(text(sql), params))

            return {
                "audit": report,
                "exchanges": await rows(
                    "SELECT e.id, e.state, e.review_reason, e.on_behalf, e.logged_for,"
                    " array_agg(d.action ORDER BY d.id) AS actions"
                    " FROM exchanges e JOIN exchange_decisions d ON d.exchange_id = e.id"
                    " WHERE e.timebank_id = :tb GROUP BY e.id ORDER BY e.id"
                ),
                "accounts": await rows(
                    "SELECT participant_id, balance, pending_in, pending_out FROM accounts"
                    " WHERE timebank_id = :tb AND participant_id IS NOT NULL"
                ),
                "balances": await rows(
                    "SELECT coalesce(sum(balance), 0) AS total, count(*) AS n FROM accounts"
                    " WHERE timebank_id = :tb"
                ),
                "transfers": await rows("SELECT count(*) FROM transfers WHERE timebank_id = :tb"),
            }

    @invariant()
    def database_matches_the_model(self) -> None:
        if self.world is None:
            return
        db = self.rt.run(self.read_database())
        assert db["audit"].ok, [str(f) for f in db["audit"].findings]

        exchanges = {
            row.id: (row.state, row.review_reason, row.on_behalf, row.logged_for, row.actions)
            for row in db["exchanges"]
        }
        expected = {
            e.id: (e.state, e.review_reason, e.on_behalf, e.logged_for, e.actions)
            for e in self.exchanges.values()
        }
        assert exchanges == expected

        by_participant = {pid: name for name, pid in self.participant_ids.items()}
        accounts = {
            by_participant[row.participant_id]: Account(
                row.balance, row.pending_in, row.pending_out
            )
            for row in db["accounts"]
            if row.participant_id in by_participant
        }
        assert accounts == self.accounts
        assert db["balances"][0].total == 0
        assert db["transfers"][0][0] == self.transfers


def test_exchange_workflow_follows_the_model(workflow_runtime: Runtime) -> None:
    run_state_machine_as_test(ExchangeWorkflow, settings=MACHINE_SETTINGS)
