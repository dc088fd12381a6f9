"""A Hypothesis state machine over group sessions (DESIGN.md §3), through the service layer on
real PostgreSQL, beside single exchanges.

A host (one of two members who sign in) or a coordinator logs sessions of 1 to 20 legs among
twenty participants whose limits are drawn at random, sometimes under a key used before; the
two members confirm or dispute their own legs; the coordinator approves, rejects, cancels or
reverses sessions, and logs single exchanges between the same people. A plain model predicts
each outcome (the legs' states and every account, or exactly which typed error the service
raises: the whole session refused when one attendee would cross a limit). After every step the
legs and accounts are compared with the model, and the ledger audit must find nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, Phase, event, settings
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

from tests.exchanges.conftest import set_policy
from tests.people import Person, World, make_world
from tests.property.test_exchange_workflow import (  # noqa: F401  (the fixture, used by name)
    RUNTIME,
    Runtime,
    _access,
    workflow_runtime,
)
from timebank.db.transactions import run_in_raw_transaction
from timebank.errors import (
    Forbidden,
    IdempotencyMismatch,
    InvalidTransition,
    LimitExceeded,
    NotFound,
    TimebankError,
    ValidationFailed,
)
from timebank.exchanges.schemas import ExchangeCreate, GroupSessionCreate, LegCreate
from timebank.ledger import repository as ledger
from timebank.ledger.audit import audit
from timebank.participants.schemas import TimebankPolicy
from timebank.participants.service import Participants

MAXIMUM = 240
OTHERS = tuple(f"p{i}" for i in range(18))  # people who never sign in
PEOPLE = ("ada", "bea", *OTHERS)
KEYS = ("session-1", "session-2")

MACHINE_SETTINGS = settings(
    max_examples=15,
    # No shrinking: each step costs round trips to PostgreSQL and a failing run is printed
    # whole, which is readable at this step count; shrinking one took more than five minutes.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass
class Account:
    floor: int
    ceiling: int
    balance: int = 0
    pending_in: int = 0
    pending_out: int = 0

    def crosses(self, into: int, out: int) -> bool:
        return bool(out and self.balance - self.pending_out - out < self.floor) or bool(
            into and self.balance + self.pending_in + into > self.ceiling
        )


@dataclass
class Leg:
    id: int
    giver: str
    receiver: str
    minutes: int
    state: str


@dataclass
class Session:
    id: int
    host: str
    side: str
    logged_by: str
    on_behalf: bool
    service_date: date
    legs: list[Leg] = field(default_factory=list)

    def attendee(self, leg: Leg) -> str:
        return leg.receiver if self.side == "giver" else leg.giver

    @property
    def minutes(self) -> int:
        return sum(leg.minutes for leg in self.legs)


@dataclass(frozen=True)
class Policy:
    confirmation_required: bool
    approval_mode: str
    review_above_minutes: int | None


policies = st.builds(
    Policy,
    confirmation_required=st.booleans(),
    approval_mode=st.sampled_from(["coordinator", "automatic", "automatic_unless"]),
    review_above_minutes=st.sampled_from([None, 300, 1200]),
)
limits = st.tuples(st.sampled_from([-300, -900, -2000, -60]), st.sampled_from([600, 4000, 120]))


class GroupSessions(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        from tests.property import test_exchange_workflow as workflow

        assert workflow.RUNTIME is not None, "use the workflow_runtime fixture"
        self.rt: Runtime = workflow.RUNTIME
        self.world: World | None = None
        self.policy: Policy | None = None
        self.ids: dict[str, int] = {}
        self.accounts: dict[str, Account] = {}
        self.sessions: dict[int, Session] = {}
        self.singles: dict[int, tuple[str, str, int, str]] = {}
        self.keys: dict[tuple[str, str], tuple[Any, int]] = {}

    @initialize(policy=policies, drawn=st.lists(limits, min_size=len(PEOPLE), max_size=len(PEOPLE)))
    def open_a_timebank(self, policy: Policy, drawn: list[tuple[int, int]]) -> None:
        async def create() -> tuple[World, dict[str, tuple[int, int]]]:
            world = await make_world(
                self.rt.engine,
                TimebankPolicy(
                    default_floor_minutes=-600,
                    default_ceiling_minutes=6000,
                    max_exchange_minutes=MAXIMUM,
                ),
            )
            await set_policy(
                self.rt.engine,
                world.timebank.id,
                confirmation_required=policy.confirmation_required,
                approval_mode=policy.approval_mode,
                review_above_minutes=policy.review_above_minutes,
            )
            found = {"ada": world.member, "bea": world.other_member}
            accounts = {
                name: (person.participant_id, person.account_id) for name, person in found.items()
            }
            for name in OTHERS:
                record = await Participants(self.rt.engine).enrol(world.timebank, "member", name)
                accounts[name] = (record.id, record.account_id)

            async def tighten(conn: Any) -> None:
                for (_, account_id), (floor, ceiling) in zip(accounts.values(), drawn, strict=True):
                    await ledger.set_limits(
                        conn,
                        timebank_id=world.timebank.id,
                        account_id=account_id,
                        floor=floor,
                        ceiling=ceiling,
                        user_id=world.coordinator.user_id,
                        reason="drawn",
                    )

            await run_in_raw_transaction(self.rt.engine, tighten)
            return world, accounts  # type: ignore[return-value]

        world, accounts = self.rt.run(create())
        self.world, self.policy = world, policy
        self.ids = {name: ids[0] for name, ids in accounts.items()}
        self.accounts = {
            name: Account(floor, ceiling)
            for name, (floor, ceiling) in zip(PEOPLE, drawn, strict=True)
        }
        event(f"policy: {policy.approval_mode}, confirmation {policy.confirmation_required}")

    # -- the model -----------------------------------------------------------------------------

    def person(self, actor: str) -> Person:
        assert self.world is not None
        return {
            "ada": self.world.member,
            "bea": self.world.other_member,
            "coordinator": self.world.coordinator,
        }[actor]

    def approved_parties(self) -> set[str]:
        found = set()
        for session in self.sessions.values():
            for leg in session.legs:
                if leg.state == "approved":
                    found |= {leg.giver, leg.receiver}
        for giver, receiver, _, state in self.singles.values():
            if state == "approved":
                found |= {giver, receiver}
        return found

    def auto_approves(self, minutes: int) -> bool:
        assert self.policy is not None
        if self.policy.approval_mode == "automatic":
            return True
        if self.policy.approval_mode == "coordinator":
            return False
        above = self.policy.review_above_minutes
        return above is None or minutes <= above

    def hold(self, giver: str, receiver: str, minutes: int) -> None:
        self.accounts[giver].pending_in += minutes
        self.accounts[receiver].pending_out += minutes

    def post(self, leg: Leg) -> None:
        giver, receiver = self.accounts[leg.giver], self.accounts[leg.receiver]
        giver.pending_in -= leg.minutes
        receiver.pending_out -= leg.minutes
        giver.balance += leg.minutes
        receiver.balance -= leg.minutes
        leg.state = "approved"

    def release(self, leg: Leg, state: str) -> None:
        self.accounts[leg.giver].pending_in -= leg.minutes
        self.accounts[leg.receiver].pending_out -= leg.minutes
        leg.state = state

    def send(self, expected: type[TimebankError] | None, coro: Any) -> Any:
        try:
            result = self.rt.run(coro)
        except TimebankError as exc:
            assert type(exc) is expected, (
                f"expected {expected.__name__ if expected else 'success'}, got "
                f"{type(exc).__name__}: {exc.detail}"
            )
            return None
        assert expected is None, f"expected {expected.__name__}, the service accepted it"
        return result

    # -- rules ---------------------------------------------------------------------------------

    @rule(
        by_host=st.booleans(),
        host=st.sampled_from(["ada", "bea"]),
        gives=st.booleans(),
        data=st.data(),
        days_ago=st.integers(0, 3),
        key=st.sampled_from([None, None, *KEYS]),
        name_host=st.booleans(),
    )
    def log_session(self, by_host, host, gives, data, days_ago, key, name_host) -> None:
        others = [p for p in PEOPLE if p != host]
        attendees = data.draw(
            st.lists(st.sampled_from(others), min_size=1, max_size=20, unique=True),
            label="attendees",
        )
        same = data.draw(st.integers(1, 120), label="minutes")
        minutes = data.draw(
            st.one_of(
                st.just([same] * len(attendees)),
                st.lists(
                    st.integers(1, MAXIMUM + 20),
                    min_size=len(attendees),
                    max_size=len(attendees),
                ),
            ),
            label="each",
        )
        actor = host if by_host else "coordinator"
        side = "giver" if gives else "receiver"
        legs = [
            (host, a, m) if gives else (a, host, m) for a, m in zip(attendees, minutes, strict=True)
        ]
        request = (tuple(legs), days_ago, name_host or len(legs) == 1)
        expected, replay_of = self.predict_session(actor, host, request, key)
        event(f"session: {expected.__name__ if expected else 'replay' if replay_of else 'new'}")
        body = GroupSessionCreate(
            host_id=self.ids[host] if name_host or len(legs) == 1 else None,
            legs=[
                LegCreate(giver_id=self.ids[g], receiver_id=self.ids[r], minutes=m)
                for g, r, m in legs
            ],
            service_date=date.today() - timedelta(days=days_ago),
            category="befriending",
        )

        async def call() -> Any:
            assert self.world is not None
            access = await _access(self.rt.auth, self.person(actor), self.world.timebank.slug)
            return await self.rt.exchanges.log_group(access, body, key)

        result = self.send(expected, call())
        if result is None:
            return
        if replay_of is not None:
            assert result.replayed and result.session.id == replay_of
            return
        assert self.policy is not None
        on_behalf = actor == "coordinator"
        session = Session(
            id=result.session.id,
            host=host,
            side=side,
            logged_by=actor,
            on_behalf=on_behalf,
            service_date=date.today() - timedelta(days=days_ago),
        )
        waits = not on_behalf and (self.policy.confirmation_required or side == "giver")
        for leg_answer, (g, r, m) in zip(result.session.legs, legs, strict=True):
            session.legs.append(Leg(leg_answer.id, g, r, m, "logged"))
            self.hold(g, r, m)
        self.sessions[session.id] = session
        if not waits:
            self.enter_awaiting(session)
        if key is not None:
            self.keys[(actor, key)] = (request, session.id)
        assert [leg.state for leg in result.session.legs] == [leg.state for leg in session.legs]

    def enter_awaiting(self, session: Session, only: Leg | None = None) -> None:
        for leg in session.legs if only is None else [only]:
            leg.state = "awaiting_approval"
        if all(leg.state == "awaiting_approval" for leg in session.legs) and self.auto_approves(
            session.minutes
        ):
            for leg in session.legs:
                self.post(leg)

    def predict_session(
        self, actor: str, host: str, request: Any, key: str | None
    ) -> tuple[type[TimebankError] | None, int | None]:
        legs, _, _ = request
        if actor not in ("coordinator", host):
            return Forbidden, None
        if key is not None and (actor, key) in self.keys:
            stored, session_id = self.keys[(actor, key)]
            return (None, session_id) if stored == request else (IdempotencyMismatch, None)
        if any(m > MAXIMUM for _, _, m in legs):
            return ValidationFailed, None
        into: dict[str, int] = defaultdict(int)
        out: dict[str, int] = defaultdict(int)
        for g, r, m in legs:
            into[g] += m
            out[r] += m
        for name in set(into) | set(out):
            if self.accounts[name].crosses(into[name], out[name]):
                return LimitExceeded, None
        return None, None

    @precondition(lambda self: self.sessions)
    @rule(
        data=st.data(),
        action=st.sampled_from(["approve", "reject", "cancel", "reverse"]),
        actor=st.sampled_from(["coordinator", "coordinator", "ada", "bea"]),
    )
    def decide_session(self, data, action, actor) -> None:
        session = self.sessions[data.draw(st.sampled_from(sorted(self.sessions)))]
        self.decide_session_with(session, action, actor)

    def decide_session_with(self, session: Session, action: str, actor: str) -> None:
        expected = self.predict_session_decision(actor, action, session)
        if expected is None and action == "reverse" and self.reversal_would_flag(session):
            event("reverse session: skipped, it would flag an account")
            return
        event(f"{action} session: {expected.__name__ if expected else 'done'}")

        async def call() -> Any:
            assert self.world is not None
            access = await _access(self.rt.auth, self.person(actor), self.world.timebank.slug)
            return await self.rt.exchanges.decide(access, session.id, action, "checked")

        result = self.send(expected, call())
        if result is None:
            return
        for leg in session.legs:
            if action == "approve":
                self.post(leg)
            elif action == "reverse":
                self.accounts[leg.giver].balance -= leg.minutes
                self.accounts[leg.receiver].balance += leg.minutes
                leg.state = "reversed"
            elif (action == "reject" and leg.state == "logged") or action == "cancel":
                self.release(leg, "cancelled")
            else:
                self.release(leg, "rejected")
        assert [leg.state for leg in result.legs] == [leg.state for leg in session.legs]

    def predict_session_decision(
        self, actor: str, action: str, session: Session
    ) -> type[TimebankError] | None:
        states = {leg.state for leg in session.legs}
        parties = {session.host, *(session.attendee(leg) for leg in session.legs)}
        if actor != "coordinator":
            if action != "cancel":
                return Forbidden  # members take no coordinator's decision
            if actor not in parties:
                return NotFound
            if actor != session.logged_by:
                return Forbidden
        allowed = {
            "approve": {"awaiting_approval", "disputed"},
            "reject": {"awaiting_approval", "disputed", "logged"},
            "cancel": {"logged", "awaiting_approval"},
            "reverse": {"approved"},
        }[action]
        if action == "approve" and "logged" in states:
            return InvalidTransition
        if action == "cancel" and "disputed" in states:
            return InvalidTransition
        if not states <= allowed:
            return InvalidTransition
        return None

    @precondition(lambda self: self.sessions)
    @rule(data=st.data())
    def coordinator_decides_as_the_workflow_expects(self, data) -> None:
        """The coordinator approves a session that waits for them, or reverses one approved."""
        session = self.sessions[data.draw(st.sampled_from(sorted(self.sessions)))]
        states = {leg.state for leg in session.legs}
        if states <= {"awaiting_approval", "disputed"}:
            action = data.draw(st.sampled_from(["approve", "approve", "reject"]))
        elif states == {"approved"}:
            action = "reverse"
        else:
            action = "reject"
        self.decide_session_with(session, action, "coordinator")

    def reversal_would_flag(self, session: Session) -> bool:
        """Whether reversing the session takes an account outside its limits (a reversal
        always posts and flags it; the exchange workflow's machine covers flags)."""
        moved: dict[str, int] = defaultdict(int)
        for leg in session.legs:
            moved[leg.giver] -= leg.minutes
            moved[leg.receiver] += leg.minutes
        return any(self.accounts[name].crosses(max(m, 0), max(-m, 0)) for name, m in moved.items())

    @precondition(lambda self: self.sessions)
    @rule(data=st.data(), actor=st.sampled_from(["ada", "bea"]), confirm=st.booleans())
    def attendee_decides_their_leg(self, data, actor, confirm) -> None:
        session = self.sessions[data.draw(st.sampled_from(sorted(self.sessions)))]
        mine = [leg for leg in session.legs if session.attendee(leg) == actor]
        action = "confirm" if confirm else "dispute"
        expected: type[TimebankError] | None
        if session.host == actor:
            expected = Forbidden
        elif not mine:
            expected = NotFound
        elif session.on_behalf or session.logged_by == actor:
            expected = Forbidden if mine[0].state == "logged" else InvalidTransition
        elif mine[0].state != "logged":
            expected = InvalidTransition
        else:
            expected = None
        event(f"{action} leg: {expected.__name__ if expected else 'done'}")

        async def call() -> Any:
            assert self.world is not None
            access = await _access(self.rt.auth, self.person(actor), self.world.timebank.slug)
            return await self.rt.exchanges.decide(access, session.id, action, "not quite")

        result = self.send(expected, call())
        if result is None:
            return
        if confirm:
            self.enter_awaiting(session, only=mine[0])
        else:
            mine[0].state = "disputed"

    @rule(
        pair=st.sampled_from(PEOPLE).flatmap(
            lambda g: st.tuples(st.just(g), st.sampled_from([p for p in PEOPLE if p != g]))
        ),
        minutes=st.integers(1, 200),
    )
    def log_single_exchange(self, pair, minutes) -> None:
        giver, receiver = pair
        crosses = self.accounts[giver].crosses(minutes, 0) or self.accounts[receiver].crosses(
            0, minutes
        )
        body = ExchangeCreate(
            giver_id=self.ids[giver],
            receiver_id=self.ids[receiver],
            minutes=minutes,
            service_date=date.today(),
            category="befriending",
        )

        async def call() -> Any:
            assert self.world is not None
            access = await _access(self.rt.auth, self.world.coordinator, self.world.timebank.slug)
            return await self.rt.exchanges.log(access, body)

        result = self.send(LimitExceeded if crosses else None, call())
        if result is None:
            return
        self.hold(giver, receiver, minutes)
        state = "awaiting_approval"
        if self.auto_approves(minutes):
            leg = Leg(result.exchange.id, giver, receiver, minutes, state)
            self.post(leg)
            state = "approved"
        self.singles[result.exchange.id] = (giver, receiver, minutes, state)
        assert result.exchange.state == state

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def database_matches_the_model(self) -> None:
        if self.world is None:
            return

        async def read() -> tuple[Any, list[Any], list[Any]]:
            assert self.world is not None
            params = {"tb": self.world.timebank.id}
            async with self.rt.engine.connect() as conn:
                report = await audit(conn, self.world.timebank.slug)
                legs = list(
                    await conn.execute(
                        text(
                            "SELECT id, group_id, state FROM exchanges"
                            " WHERE timebank_id = :tb AND group_id IS NOT NULL ORDER BY id"
                        ),
                        params,
                    )
                )
                accounts = list(
                    await conn.execute(
                        text(
                            "SELECT participant_id, balance, pending_in, pending_out"
                            " FROM accounts WHERE timebank_id = :tb"
                            " AND participant_id IS NOT NULL"
                        ),
                        params,
                    )
                )
            return report, legs, accounts

        report, legs, accounts = self.rt.run(read())
        assert report.ok, [str(f) for f in report.findings]
        expected_legs = sorted(
            (leg.id, session.id, leg.state)
            for session in self.sessions.values()
            for leg in session.legs
        )
        assert [tuple(row) for row in legs] == expected_legs
        names = {pid: name for name, pid in self.ids.items()}
        found = {
            names[row.participant_id]: (row.balance, row.pending_in, row.pending_out)
            for row in accounts
            if row.participant_id in names
        }
        assert found == {
            name: (a.balance, a.pending_in, a.pending_out) for name, a in self.accounts.items()
        }


def test_group_sessions_follow_the_model(workflow_runtime: Runtime) -> None:  # noqa: F811
    run_state_machine_as_test(GroupSessions, settings=MACHINE_SETTINGS)


__all__ = ["RUNTIME"]
