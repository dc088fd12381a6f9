"""A Hypothesis state machine over the ledger service (DESIGN.md §6).

Random posts, reservations, postings and voids of reservations, reversals (including second
reversals and reversals of reversals), gifts (to a member or to the community pot), grants
from the pot, opening balances (set once; the same again a replay, another refused), leaving
(the balance to the pot or to a named member, a debt always to the pot), limit hits and
idempotent retries are sent to the real service on real PostgreSQL, in a timebank whose
limits are drawn for each example. A plain in-memory model predicts each outcome: the new
rows, a replay of the original answer, or exactly which typed error the service must raise;
anything that would move minutes on a closed account is refused. After every step the
database is compared with the model and every invariant I1-I9 is checked, with the audit of
``timebank verify``.

The ledger is async and Hypothesis's state machines are sync, so the machine drives the service
on an event loop and engine of its own, created by the ``ledger_runtime`` fixture.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, replace
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

from tests.conftest import unique_slug
from timebank.db.engine import sqlalchemy_url
from timebank.db.transactions import run_in_raw_statements
from timebank.errors import (
    IdempotencyMismatch,
    InvalidTransition,
    LimitExceeded,
    NotFound,
    TimebankError,
    ValidationFailed,
)
from timebank.ledger import IdempotencyKey, Ledger, repository
from timebank.ledger.audit import audit
from timebank.ledger.schemas import (
    PendingRecord,
    PendingResult,
    PostResult,
    PotWrite,
    TransferRecord,
)
from timebank.participants.schemas import TimebankPolicy, TimebankRecord
from timebank.participants.service import Participants

T = TypeVar("T")

MAXIMUM = 240  # minutes per exchange; the floor and ceiling are drawn for each example
MEMBERS = 4  # participant accounts; the community fund makes a fifth, without limits
AUTHORS = ("member:1", "coordinator:7")
KEY_NAMES = tuple(f"tap-{n}" for n in range(8))

MACHINE_SETTINGS = settings(
    max_examples=25,
    stateful_step_count=40,
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
    ledger: Ledger
    participants: Participants
    # Rows of another timebank: naming them here must always be "not found".
    foreign_account_id: int
    foreign_transfer_id: int
    foreign_pending_id: int
    foreign_participant_id: int

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)


RUNTIME: Runtime | None = None


async def _foreign_rows(participants: Participants, ledger: Ledger) -> tuple[int, int, int, int]:
    other = await participants.create_timebank(unique_slug("other"), "Hillside Timebank")
    a = await participants.enrol(other, "member", "Stranger A")
    b = await participants.enrol(other, "member", "Stranger B")
    posted = await ledger.post_transfer(other.id, a.account_id, b.account_id, 30)
    pending = await ledger.reserve(other.id, a.account_id, b.account_id, 20)
    return a.account_id, posted.transfer.id, pending.pending.id, b.id


@pytest.fixture(scope="module")
def ledger_runtime(database_url: str) -> Iterator[Runtime]:
    global RUNTIME
    loop = asyncio.new_event_loop()
    engine = create_async_engine(sqlalchemy_url(database_url), pool_size=3, max_overflow=2)
    try:
        ledger = Ledger(engine)
        participants = Participants(engine)
        foreign = loop.run_until_complete(_foreign_rows(participants, ledger))
        RUNTIME = Runtime(loop, engine, ledger, participants, *foreign)
        yield RUNTIME
    finally:
        RUNTIME = None
        loop.run_until_complete(engine.dispose())
        loop.close()


# ---------------------------------------------------------------------------------------------
# Requests (equal only to a request of the same operation with the same fields, as the
# service's request hash is) and the plain model.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    debit: int
    credit: int
    minutes: int
    kind: str = "exchange"
    memo: str | None = None


@dataclass(frozen=True)
class Reserve:
    debit: int
    credit: int
    minutes: int
    kind: str = "exchange"
    memo: str | None = None


@dataclass(frozen=True)
class PostPending:
    pending_id: int


@dataclass(frozen=True)
class VoidPending:
    pending_id: int


@dataclass(frozen=True)
class Reverse:
    transfer_id: int
    reason: str


@dataclass(frozen=True)
class Gift:
    """A member's gift (``to`` None: to the pot), or a grant from the pot (``frm`` None).
    Participants are named by account id here; the call names their participants."""

    frm: int | None
    to: int | None
    minutes: int
    note: str | None = None


@dataclass(frozen=True)
class SetOpening:
    account: int
    minutes: int


@dataclass(frozen=True)
class Leave:
    account: int
    balance_to: int | None = None  # None: the pot


@dataclass(frozen=True)
class SetLimits:
    """A coordinator's change of one member account's floor and ceiling (no key)."""

    account: int
    floor: int
    ceiling: int


Request = (
    Post | Reserve | PostPending | VoidPending | Reverse | Gift | SetOpening | Leave | SetLimits
)
Key = tuple[str, str]


@dataclass
class Account:
    id: int
    floor: int | None
    ceiling: int | None
    balance: int = 0
    pending_in: int = 0
    pending_out: int = 0
    version: int = 0
    flagged: bool = False  # a reversal left it outside its limits (I5 as amended)
    closed: bool = False  # its participant left (I9)

    def gaps(self, *, out: int = 0, into: int = 0) -> tuple[int, int]:
        """How far below its floor and above its ceiling it would be (0 when within)."""
        below = above = 0
        if self.floor is not None:
            below = self.floor - (self.balance - self.pending_out - out)
        if self.ceiling is not None:
            above = self.balance + self.pending_in + into - self.ceiling
        return max(below, 0), max(above, 0)

    def outside(self) -> bool:
        return self.gaps() != (0, 0)

    def refuses(self, *, out: int = 0, into: int = 0) -> bool:
        """Whether taking ``out`` more minutes out of (or ``into`` it) breaks a limit (I5): an
        unflagged account stays within them; a flagged one goes no further out."""
        below, above = self.gaps(out=out, into=into)
        if not self.flagged:
            return (below, above) != (0, 0)
        now_below, now_above = self.gaps()
        return below > now_below or above > now_above

    def settle(self, *, reversal: bool = False) -> None:
        """The flag after a change: set by a reversal that leaves it outside, cleared once
        it is back within its limits."""
        if self.floor is None:
            return
        self.flagged = self.outside() and (self.flagged or reversal)


@dataclass(frozen=True)
class Transfer:
    id: int
    debit: int
    credit: int
    minutes: int
    kind: str
    pending_id: int | None
    reverses_id: int | None


@dataclass
class Reservation:
    id: int
    debit: int
    credit: int
    minutes: int
    kind: str
    memo: str | None
    state: str = "pending"


@dataclass(frozen=True)
class Replay:
    """The prediction for a retry: the original answer again, and nothing new."""

    original: TransferRecord | PendingRecord | PotWrite[Any]


@dataclass(frozen=True)
class AlreadySet:
    """The prediction for an opening balance set again to the value it has: answered as a
    replay of the first, whatever the key, and nothing moves."""

    opening: SetOpening


NEW = "new"


# ---------------------------------------------------------------------------------------------
# Strategies.
# ---------------------------------------------------------------------------------------------

# Slot 0 is the community fund; mostly two different accounts, sometimes the same one twice.
_two_slots = st.lists(st.integers(0, MEMBERS), min_size=2, max_size=2, unique=True).map(tuple)
slot_pairs = st.one_of(
    _two_slots, _two_slots, _two_slots, st.integers(0, MEMBERS).map(lambda i: (i, i))
)
minutes_values = st.one_of(
    st.integers(1, 60),
    st.integers(1, 60),
    st.integers(1, 60),
    st.integers(61, MAXIMUM),
    st.integers(61, MAXIMUM),
    st.integers(61, MAXIMUM),
    st.integers(MAXIMUM + 1, MAXIMUM + 90),  # over the maximum per exchange
    st.integers(-3, 0),  # not a positive number of minutes
)
kinds = st.sampled_from(["exchange", "exchange", "exchange", "grant", "adjustment"])
memos = st.sampled_from([None, "Gardening", "Lift to the clinic"])
reasons = st.sampled_from(["logged twice", "wrong member", "  "])
keys = st.one_of(st.none(), st.tuples(st.sampled_from(AUTHORS), st.sampled_from(KEY_NAMES)))
notes = st.sampled_from([None, "for your move", "a hard month"])
# Opening balances of either sign, mostly within the drawn limits, sometimes past them.
opening_values = st.one_of(st.integers(-450, 450), st.just(0), st.integers(-700, 700))


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        assert RUNTIME is not None, "use the ledger_runtime fixture"
        self.rt = RUNTIME
        self.timebank: TimebankRecord | None = None
        self.slots: list[int] = []  # account ids; slot 0 is the community fund
        self.accounts: dict[int, Account] = {}
        self.transfers: dict[int, Transfer] = {}
        self.reversed: set[int] = set()
        self.reservations: dict[int, Reservation] = {}
        self.keys: dict[Key, tuple[Request, TransferRecord | PendingRecord | PotWrite[Any]]] = {}
        self.reached_abroad = False
        self.participant_of: dict[int, int] = {}  # account id -> participant id (members)
        # The records beside the ledger, as the model has them (transfer ids included).
        self.gifts: dict[int, tuple[str, int | None, int | None, int, str | None, int]] = {}
        self.openings: dict[int, tuple[int, int | None]] = {}  # account -> (minutes, transfer)
        self.departures: dict[int, tuple[int | None, int, int | None]] = {}
        self.floor = self.ceiling = 0

    # -- set-up ---------------------------------------------------------------------------------

    @initialize(
        floor=st.integers(-400, -30),
        ceiling=st.integers(30, 480),
        limits=st.lists(
            st.one_of(st.none(), st.tuples(st.integers(-400, 0), st.integers(0, 480))),
            min_size=MEMBERS,
            max_size=MEMBERS,
        ),
    )
    def open_a_timebank(
        self, floor: int, ceiling: int, limits: list[tuple[int, int] | None]
    ) -> None:
        """A timebank with limits drawn for the example, and some members given limits of
        their own (a floor or ceiling of zero included)."""
        self.floor, self.ceiling = floor, ceiling

        async def create() -> tuple[TimebankRecord, list[tuple[int, int]]]:
            tb = await self.rt.participants.create_timebank(
                unique_slug("machine"),
                "Machine Timebank",
                TimebankPolicy(
                    default_floor_minutes=floor,
                    default_ceiling_minutes=ceiling,
                    max_exchange_minutes=MAXIMUM,
                    welcome_grant_minutes=0,
                ),
            )
            members = [
                await self.rt.participants.enrol(tb, kind, f"Member {n}")
                for n, kind in enumerate(["member", "member", "professional", "organisation"])
            ]
            return tb, [(m.account_id, m.id) for m in members]

        self.timebank, members = self.rt.run(create())
        fund = self.timebank.community_fund_account_id
        self.slots = [fund, *(account_id for account_id, _ in members)]
        self.accounts = {fund: Account(fund, None, None)}
        for account_id, participant_id in members:
            self.accounts[account_id] = Account(account_id, floor, ceiling)
            self.participant_of[account_id] = participant_id
        for (account_id, _), own in zip(members, limits, strict=True):
            if own is not None:
                assert self.submit(SetLimits(account_id, *own), None) == NEW

    # -- the model's predictions ---------------------------------------------------------------

    def predict(
        self, request: Request, key: Key | None
    ) -> type[TimebankError] | Replay | AlreadySet | str:
        if key is not None and key in self.keys:
            stored_request, original = self.keys[key]
            if stored_request != request:
                return IdempotencyMismatch
            return Replay(original)
        refusal = self.refusal(request)
        if refusal is not None:
            return refusal
        if isinstance(request, SetOpening) and request.account in self.openings:
            return AlreadySet(request)
        return NEW

    def moving(self, debit: int, credit: int, minutes: int) -> type[TimebankError] | None:
        """What refuses moving ``minutes`` (posted or reserved) from ``debit`` to ``credit``:
        the accounts change in ascending id order, and the first that cannot refuses, a
        closed one (I9) as an invalid transition, one past its limits (I5) as a limit."""
        for account_id in sorted((debit, credit)):
            account = self.accounts[account_id]
            if account.closed:
                return InvalidTransition
            out, into = (minutes, 0) if account_id == debit else (0, minutes)
            if account.refuses(out=out, into=into):
                return LimitExceeded
        return None

    def refusal(self, request: Request) -> type[TimebankError] | None:
        match request:
            case Post() | Reserve():
                if request.minutes <= 0 or request.debit == request.credit:
                    return ValidationFailed
                if request.debit not in self.accounts or request.credit not in self.accounts:
                    return NotFound
                # A request over the maximum is invalid whatever the balances are.
                if request.kind == "exchange" and request.minutes > MAXIMUM:
                    return ValidationFailed
                return self.moving(request.debit, request.credit, request.minutes)
            case PostPending() | VoidPending():
                reservation = self.reservations.get(request.pending_id)
                if reservation is None:
                    return NotFound
                if reservation.state != "pending":
                    return InvalidTransition
                return None
            case Reverse():
                if not request.reason.strip():
                    return ValidationFailed
                original = self.transfers.get(request.transfer_id)
                if original is None:
                    return NotFound
                if original.kind == "reversal" or original.id in self.reversed:
                    return InvalidTransition
                if self.accounts[original.debit].closed or self.accounts[original.credit].closed:
                    return InvalidTransition  # nothing moves on a closed account (I9)
                return None  # a reversal always posts, whatever the limits
            case Gift(frm, to, minutes):
                if frm is None and to is None:
                    return ValidationFailed  # a grant goes to a member
                if frm == to:
                    return ValidationFailed  # nobody gifts to themselves
                fund = self.slots[0]
                debit, credit = frm or fund, to or fund
                if self.accounts[debit].closed or self.accounts[credit].closed:
                    return InvalidTransition  # who has left neither gives nor receives
                if minutes <= 0:
                    return ValidationFailed
                return self.moving(debit, credit, minutes)
            case SetOpening(account_id, minutes):
                account = self.accounts[account_id]
                if account.closed:
                    return InvalidTransition
                if account_id in self.openings:
                    # Set once: the same value again is answered as a replay.
                    return None if self.openings[account_id][0] == minutes else InvalidTransition
                if minutes > 0:
                    return self.moving(self.slots[0], account_id, minutes)
                if minutes < 0:
                    return self.moving(account_id, self.slots[0], -minutes)
                return None
            case SetLimits(account_id, floor, ceiling):
                if floor > 0 or ceiling < 0:
                    return ValidationFailed
                account = self.accounts[account_id]
                if account.balance - account.pending_out < floor:
                    return LimitExceeded  # the new limits must hold the account
                if account.balance + account.pending_in > ceiling:
                    return LimitExceeded
                return None
            case Leave(account_id, balance_to):
                if balance_to == account_id:
                    return ValidationFailed
                account = self.accounts[account_id]
                if account.closed or (balance_to is not None and self.accounts[balance_to].closed):
                    return InvalidTransition
                if account.pending_in or account.pending_out:
                    return InvalidTransition  # settled first
                if account.balance < 0 and balance_to is not None:
                    return ValidationFailed  # a debt goes to the pot
                if account.balance > 0:
                    return self.moving(account_id, balance_to or self.slots[0], account.balance)
                if account.balance < 0:
                    return self.moving(self.slots[0], account_id, -account.balance)
                return None
        raise AssertionError(f"unknown request {request!r}")

    # -- sending a request and checking the answer ---------------------------------------------

    async def call(
        self, request: Request, key: Key | None
    ) -> PostResult | PendingResult | PotWrite[Any]:
        assert self.timebank is not None
        tb = self.timebank.id
        ik = IdempotencyKey(*key) if key is not None else None
        ledger = self.rt.ledger
        match request:
            case Post(debit, credit, minutes, kind, memo):
                return await ledger.post_transfer(
                    tb, debit, credit, minutes, kind=kind, memo=memo, key=ik
                )
            case Reserve(debit, credit, minutes, kind, memo):
                return await ledger.reserve(
                    tb, debit, credit, minutes, kind=kind, memo=memo, key=ik
                )
            case PostPending(pending_id):
                return await ledger.post_pending(tb, pending_id, key=ik)
            case VoidPending(pending_id):
                return await ledger.void_pending(tb, pending_id, key=ik)
            case Reverse(transfer_id, reason):
                return await ledger.reverse(tb, transfer_id, reason, key=ik)
            case Gift(frm, to, minutes, note):
                return await ledger.gift(
                    tb, self.participant(frm), self.participant(to), minutes, note=note, key=ik
                )
            case SetOpening(account_id, minutes):
                return await ledger.set_opening(
                    tb, self.participant_of[account_id], minutes, key=ik
                )
            case SetLimits(account_id, floor, ceiling):
                return await run_in_raw_statements(
                    self.rt.engine,
                    lambda conn: repository.set_limits(
                        conn,
                        timebank_id=tb,
                        account_id=account_id,
                        floor=floor,
                        ceiling=ceiling,
                        user_id=None,  # type: ignore[arg-type]
                        reason="drawn by the machine",
                    ),
                )
            case Leave(account_id, balance_to):
                return await ledger.leave(
                    tb,
                    self.participant_of[account_id],
                    balance_to=self.participant(balance_to),
                    key=ik,
                )
        raise AssertionError(f"unknown request {request!r}")

    def participant(self, account_id: int | None) -> int | None:
        """The participant of a member's account; None for the pot."""
        return None if account_id is None else self.participant_of[account_id]

    def submit(
        self, request: Request, key: Key | None
    ) -> type[TimebankError] | Replay | AlreadySet | str:
        """Send one request; assert the service did what the model predicts; update the model."""
        expected = self.predict(request, key)
        event(f"{type(request).__name__}: {_name(expected)}")
        try:
            result = self.rt.run(self.call(request, key))
        except TimebankError as exc:
            assert type(exc) is expected, (
                f"{request!r} with key {key!r}: expected {_name(expected)}, "
                f"the service raised {type(exc).__name__}: {exc.detail}"
            )
            return expected
        assert not isinstance(expected, type), (
            f"{request!r} with key {key!r}: expected {expected.__name__}, the service accepted "
            f"it: {result!r}"
        )
        if isinstance(expected, Replay):
            self.check_replay(request, result, expected.original)
        elif isinstance(expected, AlreadySet):
            # The first opening balance again: nothing moves, but a new key is answered.
            assert isinstance(result, PotWrite) and result.replayed, result
            minutes, transfer_id = self.openings[expected.opening.account]
            assert (result.record.minutes, result.record.transfer_id) == (minutes, transfer_id)
            assert (result.transfer.id if result.transfer else None) == transfer_id
            if key is not None:
                self.keys[key] = (request, result)
        else:
            assert isinstance(request, SetLimits) or not result.replayed, (
                f"{request!r} was new but came back replayed"
            )
            record = self.apply(request, result)
            for account in self.accounts.values():
                account.settle(reversal=isinstance(request, Reverse))
            if key is not None:
                self.keys[key] = (request, record)
        return expected

    def check_replay(
        self,
        request: Request,
        result: PostResult | PendingResult | PotWrite[Any],
        original: TransferRecord | PendingRecord | PotWrite[Any],
    ) -> None:
        assert result.replayed, f"a retry of {request!r} was not marked replayed"
        if isinstance(result, PotWrite):
            assert isinstance(original, PotWrite)
            assert (result.record, result.transfer) == (original.record, original.transfer), (
                "a replay must return the original record and transfer"
            )
        elif isinstance(result, PostResult):
            assert result.transfer == original, "a replay must return the original transfer"
        else:
            # The same reservation, as it stands now (it may have been posted or voided since).
            now = self.reservations[original.id].state
            pending = result.pending
            assert replace(pending, state="", resolved_at=None) == replace(
                original, state="", resolved_at=None
            ), "a replay must return the original reservation"
            assert pending.state == now and (pending.resolved_at is None) == (now == "pending")

    def apply(
        self, request: Request, result: PostResult | PendingResult | PotWrite[Any]
    ) -> TransferRecord | PendingRecord | PotWrite[Any]:
        fund = self.slots[0]
        match request:
            case SetLimits(account_id, floor, ceiling):
                change: Any = result
                assert (change["floor_after"], change["ceiling_after"]) == (floor, ceiling)
                account = self.accounts[account_id]
                assert (change["floor_before"], change["ceiling_before"]) == (
                    account.floor,
                    account.ceiling,
                )
                account.floor, account.ceiling = floor, ceiling
                return change
            case Gift(frm, to, minutes, note):
                assert isinstance(result, PotWrite) and result.transfer is not None
                kind = "gift" if frm is not None else "grant"
                self.record_transfer(
                    result.transfer,
                    Transfer(0, frm or fund, to or fund, minutes, kind, None, None),
                    memo=None,  # the note stays beside the ledger
                )
                gift = result.record
                got = (gift.kind, gift.from_participant_id, gift.to_participant_id)
                assert got == (kind, self.participant(frm), self.participant(to)), gift
                assert (gift.minutes, gift.note) == (minutes, note), gift
                assert gift.id not in self.gifts
                self.gifts[gift.id] = (kind, frm, to, minutes, note, result.transfer.id)
                return result
            case SetOpening(account_id, minutes):
                assert isinstance(result, PotWrite)
                assert result.record.minutes == minutes
                transfer_id = None
                if minutes == 0:
                    assert result.transfer is None
                else:
                    assert result.transfer is not None
                    debit, credit = (fund, account_id) if minutes > 0 else (account_id, fund)
                    self.record_transfer(
                        result.transfer,
                        Transfer(0, debit, credit, abs(minutes), "opening", None, None),
                        memo=None,
                    )
                    transfer_id = result.transfer.id
                assert result.record.transfer_id == transfer_id
                self.openings[account_id] = (minutes, transfer_id)
                return result
            case Leave(account_id, balance_to):
                assert isinstance(result, PotWrite)
                account = self.accounts[account_id]
                balance = account.balance
                departure = result.record
                assert departure.balance_minutes == balance, departure
                assert departure.balance_to_participant_id == self.participant(balance_to)
                transfer_id = None
                if balance == 0:
                    assert result.transfer is None
                else:
                    assert result.transfer is not None
                    debit, credit = (
                        (account_id, balance_to or fund) if balance > 0 else (fund, account_id)
                    )
                    self.record_transfer(
                        result.transfer,
                        Transfer(0, debit, credit, abs(balance), "leaving", None, None),
                        memo=None,
                    )
                    transfer_id = result.transfer.id
                assert departure.transfer_id == transfer_id
                assert account.balance == 0
                account.closed = True
                self.departures[account_id] = (balance_to, balance, transfer_id)
                return result
            case Post():
                assert isinstance(result, PostResult)
                return self.record_transfer(
                    result.transfer,
                    Transfer(
                        0, request.debit, request.credit, request.minutes, request.kind, None, None
                    ),
                    memo=request.memo,
                )
            case Reserve():
                assert isinstance(result, PendingResult)
                pending = result.pending
                expected = (request.debit, request.credit, request.minutes, request.kind, "pending")
                got = (
                    pending.debit_account_id,
                    pending.credit_account_id,
                    pending.minutes,
                    pending.kind,
                    pending.state,
                )
                assert got == expected and pending.memo == request.memo, pending
                assert pending.id not in self.reservations
                self.reservations[pending.id] = Reservation(
                    pending.id,
                    request.debit,
                    request.credit,
                    request.minutes,
                    request.kind,
                    request.memo,
                )
                self.accounts[request.debit].pending_out += request.minutes
                self.accounts[request.credit].pending_in += request.minutes
                return pending
            case PostPending():
                assert isinstance(result, PostResult)
                reservation = self.reservations[request.pending_id]
                reservation.state = "posted"
                self.accounts[reservation.debit].pending_out -= reservation.minutes
                self.accounts[reservation.credit].pending_in -= reservation.minutes
                return self.record_transfer(
                    result.transfer,
                    Transfer(
                        0,
                        reservation.debit,
                        reservation.credit,
                        reservation.minutes,
                        reservation.kind,
                        reservation.id,
                        None,
                    ),
                    memo=reservation.memo,
                )
            case VoidPending():
                assert isinstance(result, PendingResult)
                reservation = self.reservations[request.pending_id]
                assert result.pending.id == reservation.id
                assert result.pending.state == "voided"
                assert result.pending.resolved_at is not None
                reservation.state = "voided"
                self.accounts[reservation.debit].pending_out -= reservation.minutes
                self.accounts[reservation.credit].pending_in -= reservation.minutes
                return result.pending
            case Reverse():
                assert isinstance(result, PostResult)
                original = self.transfers[request.transfer_id]
                self.reversed.add(original.id)
                return self.record_transfer(
                    result.transfer,
                    Transfer(
                        0,
                        original.credit,
                        original.debit,
                        original.minutes,
                        "reversal",
                        None,
                        original.id,
                    ),
                    memo=request.reason,
                )
        raise AssertionError(f"unknown request {request!r}")

    def record_transfer(
        self, record: TransferRecord, expected: Transfer, *, memo: str | None
    ) -> TransferRecord:
        got = Transfer(
            0,
            record.debit_account_id,
            record.credit_account_id,
            record.minutes,
            record.kind,
            record.pending_transfer_id,
            record.reverses_transfer_id,
        )
        assert got == expected, f"posted {got}, expected {expected}"
        assert record.memo == memo
        assert self.timebank is not None and record.timebank_id == self.timebank.id
        assert record.id not in self.transfers, f"transfer id {record.id} returned twice"
        self.transfers[record.id] = replace(expected, id=record.id)
        debit, credit = self.accounts[expected.debit], self.accounts[expected.credit]
        debit.balance -= expected.minutes
        credit.balance += expected.minutes
        debit.version += 1
        credit.version += 1
        return record

    # -- rules ------------------------------------------------------------------------------------

    @rule(slots=slot_pairs, minutes=minutes_values, kind=kinds, memo=memos, key=keys)
    def post(self, slots: tuple[int, int], minutes: int, kind: str, memo, key) -> None:
        debit, credit = (self.slots[slot] for slot in slots)
        self.submit(Post(debit, credit, minutes, kind, memo), key)

    @rule(slots=slot_pairs, minutes=minutes_values, kind=kinds, memo=memos, key=keys)
    def reserve(self, slots: tuple[int, int], minutes: int, kind: str, memo, key) -> None:
        debit, credit = (self.slots[slot] for slot in slots)
        self.submit(Reserve(debit, credit, minutes, kind, memo), key)

    def reservation_ids(self, data: st.DataObject) -> int:
        open_ids = sorted(r.id for r in self.reservations.values() if r.state == "pending")
        every = sorted(self.reservations)
        choices = st.sampled_from(every)
        if open_ids:
            choices = st.one_of(st.sampled_from(open_ids), st.sampled_from(open_ids), choices)
        return data.draw(choices, label="reservation")

    @precondition(lambda self: self.reservations)
    @rule(data=st.data(), key=keys)
    def post_a_reservation(self, data: st.DataObject, key) -> None:
        self.submit(PostPending(self.reservation_ids(data)), key)

    @precondition(lambda self: self.reservations)
    @rule(data=st.data(), key=keys)
    def void_a_reservation(self, data: st.DataObject, key) -> None:
        self.submit(VoidPending(self.reservation_ids(data)), key)

    @precondition(lambda self: self.transfers)
    @rule(data=st.data(), reason=reasons, key=keys)
    def reverse(self, data: st.DataObject, reason: str, key) -> None:
        transfer_id = data.draw(st.sampled_from(sorted(self.transfers)), label="transfer")
        self.submit(Reverse(transfer_id, reason), key)

    @precondition(lambda self: self.reversed)
    @rule(data=st.data())
    def reverse_a_second_time(self, data: st.DataObject) -> None:
        transfer_id = data.draw(st.sampled_from(sorted(self.reversed)), label="reversed")
        assert self.submit(Reverse(transfer_id, "once more"), None) is InvalidTransition

    @precondition(lambda self: any(t.kind == "reversal" for t in self.transfers.values()))
    @rule(data=st.data())
    def reverse_a_reversal(self, data: st.DataObject) -> None:
        reversals = sorted(t.id for t in self.transfers.values() if t.kind == "reversal")
        transfer_id = data.draw(st.sampled_from(reversals), label="reversal")
        assert self.submit(Reverse(transfer_id, "undo the undo"), None) is InvalidTransition

    @rule(member=st.integers(1, MEMBERS), over=st.integers(0, 1), reserve=st.booleans(), key=keys)
    def spend_to_the_floor(self, member: int, over: int, reserve: bool, key) -> None:
        """Spend exactly what is left above the floor (accepted) or one minute more (refused)."""
        account = self.accounts[self.slots[member]]
        assert account.floor is not None
        minutes = account.balance - account.pending_out - account.floor + over
        kind = "exchange" if minutes <= MAXIMUM else "adjustment"
        op = Reserve if reserve else Post
        outcome = self.submit(op(account.id, self.slots[0], minutes, kind, "to the floor"), key)
        if key is None and minutes > 0:
            assert outcome == (
                InvalidTransition if account.closed else LimitExceeded if over else NEW
            )

    @rule(member=st.integers(1, MEMBERS), over=st.integers(0, 1), reserve=st.booleans(), key=keys)
    def earn_to_the_ceiling(self, member: int, over: int, reserve: bool, key) -> None:
        """Earn exactly the room left under the ceiling (accepted) or one minute more (refused)."""
        account = self.accounts[self.slots[member]]
        assert account.ceiling is not None
        minutes = account.ceiling - account.balance - account.pending_in + over
        kind = "exchange" if minutes <= MAXIMUM else "grant"
        op = Reserve if reserve else Post
        outcome = self.submit(op(self.slots[0], account.id, minutes, kind, "to the ceiling"), key)
        if key is None and minutes > 0:
            assert outcome == (
                InvalidTransition if account.closed else LimitExceeded if over else NEW
            )

    @rule(
        debit=st.integers(1, MEMBERS),
        credit=st.integers(1, MEMBERS),
        extra=st.integers(1, 90),
        reserve=st.booleans(),
    )
    def exceed_the_exchange_maximum(self, debit: int, credit: int, extra: int, reserve: bool):
        op = Reserve if reserve else Post
        request = op(self.slots[debit], self.slots[credit], MAXIMUM + extra)
        assert self.submit(request, None) is ValidationFailed

    @precondition(lambda self: self.keys)
    @rule(data=st.data())
    def retry_the_same_request(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.keys)), label="key")
        request, _ = self.keys[key]
        assert isinstance(self.submit(request, key), Replay)

    @precondition(lambda self: self.keys)
    @rule(data=st.data(), change=st.integers(0, 2))
    def retry_with_a_different_request(self, data: st.DataObject, change: int) -> None:
        key = data.draw(st.sampled_from(sorted(self.keys)), label="key")
        request, _ = self.keys[key]
        different: Request
        match request:
            case Post() | Reserve():
                other_op = Reserve if isinstance(request, Post) else Post
                different = [
                    replace(request, minutes=request.minutes + 1),
                    replace(request, memo=(request.memo or "") + " (edited)"),
                    other_op(
                        request.debit, request.credit, request.minutes, request.kind, request.memo
                    ),
                ][change]
            case PostPending(pending_id):
                different = [VoidPending(pending_id), PostPending(pending_id + 1), Reverse(1, "x")][
                    change
                ]
            case VoidPending(pending_id):
                different = [PostPending(pending_id), VoidPending(pending_id + 1), Reverse(1, "x")][
                    change
                ]
            case Reverse(transfer_id, reason):
                different = [
                    Reverse(transfer_id, reason + "!"),
                    Reverse(transfer_id + 1, reason),
                    PostPending(transfer_id),
                ][change]
            case Gift(frm, to, minutes, note):
                different = [
                    replace(request, minutes=minutes + 1),
                    replace(request, note=(note or "") + " (edited)"),
                    Post(frm or self.slots[0], to or self.slots[0], minutes),
                ][change]
            case SetOpening(account_id, minutes):
                different = [
                    SetOpening(account_id, minutes + 1),
                    Leave(account_id),
                    Gift(account_id, None, abs(minutes) + 1),
                ][change]
            case Leave(account_id, balance_to):
                different = [
                    Leave(account_id, None if balance_to is not None else self.slots[1]),
                    SetOpening(account_id, 0),
                    Reverse(1, "x"),
                ][change]
        assert self.submit(different, key) is IdempotencyMismatch

    @rule(
        member=st.integers(1, MEMBERS),
        floor=st.integers(-450, 30),
        ceiling=st.integers(-30, 500),
        snug=st.booleans(),
    )
    def change_limits(self, member: int, floor: int, ceiling: int, snug: bool) -> None:
        """New limits for a member: refused unless they hold the balance and what is pending;
        ``snug`` draws them exactly at what the account holds (accepted)."""
        account = self.accounts[self.slots[member]]
        if snug:
            floor = min(account.balance - account.pending_out, 0)
            ceiling = max(account.balance + account.pending_in, 0)
        outcome = self.submit(SetLimits(account.id, floor, ceiling), None)
        if snug:
            assert outcome == NEW

    # -- the pot: gifts, grants, opening balances, leaving -------------------------------------

    @rule(
        giver=st.integers(1, MEMBERS),
        to=st.integers(0, MEMBERS),
        minutes=minutes_values,
        note=notes,
        key=keys,
    )
    def gift(self, giver: int, to: int, minutes: int, note: str | None, key) -> None:
        """A member gifts to another member, to the pot (slot 0), or (refused) to themselves."""
        receiver = self.slots[to] if to else None
        self.submit(Gift(self.slots[giver], receiver, minutes, note), key)

    @rule(
        to=st.sampled_from([1, 2, 3, 4, 1, 2, 3, 4, 0]),
        minutes=minutes_values,
        note=notes,
        key=keys,
    )
    def grant(self, to: int, minutes: int, note: str | None, key) -> None:
        """A grant from the pot to a member (to the pot itself: refused)."""
        self.submit(Gift(None, self.slots[to] if to else None, minutes, note), key)

    @rule(member=st.integers(1, MEMBERS), over=st.integers(0, 1), grant=st.booleans())
    def gift_to_a_limit(self, member: int, over: int, grant: bool) -> None:
        """Gift to the pot exactly what is left above the floor, or grant exactly the room left
        under the ceiling (accepted), or one minute more (refused)."""
        account = self.accounts[self.slots[member]]
        assert account.floor is not None and account.ceiling is not None
        if grant:
            minutes = account.ceiling - account.balance - account.pending_in + over
            request = Gift(None, account.id, minutes, "to the ceiling")
        else:
            minutes = account.balance - account.pending_out - account.floor + over
            request = Gift(account.id, None, minutes, "to the floor")
        outcome = self.submit(request, None)
        if minutes > 0 and not account.closed and not account.flagged:
            assert outcome == (LimitExceeded if over else NEW)

    @rule(member=st.integers(1, MEMBERS), minutes=opening_values, key=keys)
    def set_an_opening_balance(self, member: int, minutes: int, key) -> None:
        self.submit(SetOpening(self.slots[member], minutes), key)

    @precondition(lambda self: self.openings)
    @rule(data=st.data(), same=st.booleans(), key=keys)
    def set_an_opening_balance_again(self, data: st.DataObject, same: bool, key) -> None:
        """Once set, the same value again is a replay that moves nothing; another is refused."""
        account_id = data.draw(st.sampled_from(sorted(self.openings)), label="opened")
        minutes = self.openings[account_id][0]
        if not same:
            minutes += data.draw(st.sampled_from([-30, -1, 1, 30]), label="change")
        outcome = self.submit(SetOpening(account_id, minutes), key)
        if key is None:
            expected = AlreadySet if same else InvalidTransition
            if self.accounts[account_id].closed:
                expected = InvalidTransition
            assert outcome is expected or isinstance(outcome, expected)

    # Leaving is for good: at most two of the four members leave in one example, so the rest
    # of it still has members to move minutes between (touch_a_closed_account tries again).
    @precondition(lambda self: len(self.departures) < 2)
    @rule(member=st.integers(1, MEMBERS), to=st.integers(0, MEMBERS), key=keys)
    def leave(self, member: int, to: int, key) -> None:
        """A member leaves: the balance to the pot (slot 0) or to a member (to themselves, or a
        debt to a member: refused); refused while anything is pending."""
        self.submit(Leave(self.slots[member], self.slots[to] if to else None), key)

    @precondition(lambda self: len(self.departures) < 2)
    @rule(member=st.integers(1, MEMBERS), to=st.integers(0, MEMBERS))
    def settle_and_leave(self, member: int, to: int) -> None:
        """Void whatever is pending on the account, then leave (a debt to the pot)."""
        account = self.accounts[self.slots[member]]
        for reservation in sorted(self.reservations.values(), key=lambda r: r.id):
            if reservation.state == "pending" and account.id in (
                reservation.debit,
                reservation.credit,
            ):
                assert self.submit(VoidPending(reservation.id), None) == NEW
        receiver = self.slots[to] if to and to != member and account.balance > 0 else None
        outcome = self.submit(Leave(account.id, receiver), None)
        if account.closed and outcome == NEW:
            assert self.departures[account.id][0] == receiver

    @precondition(lambda self: self.departures)
    @rule(data=st.data(), action=st.integers(0, 8), minutes=st.integers(1, 30))
    def touch_a_closed_account(self, data: st.DataObject, action: int, minutes: int) -> None:
        """Whatever would move minutes on a closed account is refused (I9)."""
        closed = data.draw(st.sampled_from(sorted(self.departures)), label="closed")
        open_ = [a for a in self.slots[1:] if not self.accounts[a].closed] or [self.slots[0]]
        other = data.draw(st.sampled_from(open_), label="other")
        fund = self.slots[0]
        request: Request = [
            Post(other, closed, minutes),
            Post(closed, other, minutes),
            Reserve(other, closed, minutes),
            Reserve(closed, fund, minutes),
            Gift(other if other != fund else None, closed, minutes),
            Gift(closed, None, minutes),
            SetOpening(closed, minutes),
            Leave(closed),
            Leave(other, closed) if other != fund else Gift(None, closed, minutes),
        ][action]
        outcome = self.submit(request, None)
        if isinstance(request, Post | Reserve) and other < closed:
            assert outcome in (InvalidTransition, LimitExceeded)  # the other refuses first
        else:
            assert outcome is InvalidTransition

    @precondition(lambda self: not self.reached_abroad)
    @rule()
    def reach_into_another_timebank(self) -> None:
        """Rows of another timebank are never found from this one (once per example: the
        answer does not depend on this timebank's state)."""
        self.reached_abroad = True
        rt = self.rt
        for request in (
            Post(rt.foreign_account_id, self.slots[1], 10),
            Reserve(self.slots[1], rt.foreign_account_id, 10),
            PostPending(rt.foreign_pending_id),
            VoidPending(rt.foreign_pending_id),
            Reverse(rt.foreign_transfer_id, "not ours"),
        ):
            assert self.submit(request, None) is NotFound
        # A participant of another timebank: the pot's writes do not find them either.
        assert self.timebank is not None
        tb, stranger = self.timebank.id, rt.foreign_participant_id
        member = self.participant_of[self.slots[1]]
        for write in (
            lambda: rt.ledger.gift(tb, stranger, member, 10),
            lambda: rt.ledger.gift(tb, stranger, None, 10),
            lambda: rt.ledger.gift(tb, None, stranger, 10),
            lambda: rt.ledger.set_opening(tb, stranger, 10),
            lambda: rt.ledger.leave(tb, stranger),
        ):
            with pytest.raises(NotFound):
                rt.run(write())

    # -- invariants, checked against the database after every step ------------------------------

    async def read_database(self) -> dict[str, Any]:
        assert self.timebank is not None
        params = {"tb": self.timebank.id}
        async with self.rt.engine.connect() as conn:
            report = await audit(conn, self.timebank.slug)
        async with self.rt.engine.connect() as conn:
            await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))

            async def rows(sql: str) -> list[Any]:
                return list(await conn.execute(text(sql), params))

            return {
                "audit": report,
                "accounts": await rows(
                    "SELECT id, balance, pending_in, pending_out, floor, ceiling, version,"
                    " flagged_by_reversal_id IS NOT NULL AS flagged,"
                    " closed_at IS NOT NULL AS closed"
                    " FROM accounts WHERE timebank_id = :tb ORDER BY id"
                ),
                "gifts": await rows(
                    "SELECT g.id, g.kind, fa.id AS frm, ta.id AS to, g.minutes, g.note,"
                    " g.transfer_id FROM gifts g"
                    " LEFT JOIN accounts fa ON fa.participant_id = g.from_participant_id"
                    " LEFT JOIN accounts ta ON ta.participant_id = g.to_participant_id"
                    " WHERE g.timebank_id = :tb"
                ),
                "openings": await rows(
                    "SELECT account_id, minutes, transfer_id FROM opening_balances"
                    " WHERE timebank_id = :tb"
                ),
                "departures": await rows(
                    "SELECT d.account_id, ta.id AS balance_to, d.balance_minutes, d.transfer_id"
                    " FROM departures d"
                    " LEFT JOIN accounts ta ON ta.participant_id = d.balance_to_participant_id"
                    " WHERE d.timebank_id = :tb"
                ),
                "transfers": await rows(
                    "SELECT id, debit_account_id, credit_account_id, minutes, kind,"
                    " pending_transfer_id, reverses_transfer_id"
                    " FROM transfers WHERE timebank_id = :tb ORDER BY id"
                ),
                "reservations": await rows(
                    "SELECT id, debit_account_id, credit_account_id, minutes, kind, memo, state,"
                    " resolved_at IS NOT NULL AS resolved"
                    " FROM pending_transfers WHERE timebank_id = :tb ORDER BY id"
                ),
                "postings": await rows(
                    "SELECT transfer_id, account_id, minutes FROM postings"
                    " WHERE timebank_id = :tb ORDER BY transfer_id, account_id"
                ),
                "keys": await rows(
                    "SELECT author, key, result IS NOT NULL AS answered FROM idempotency_keys"
                    " WHERE timebank_id = :tb"
                ),
            }

    @invariant()
    def database_matches_the_model(self) -> None:
        if self.timebank is None:
            return
        db = self.rt.run(self.read_database())

        # The audit re-derives everything from the postings (I1, I3, I4, I5, I6).
        assert db["audit"].ok, [str(f) for f in db["audit"].findings]

        # I3 and I5: every account as the model has it, within its limits.
        accounts = {
            row.id: Account(
                row.id,
                row.floor,
                row.ceiling,
                row.balance,
                row.pending_in,
                row.pending_out,
                row.version,
                row.flagged,
                row.closed,
            )
            for row in db["accounts"]
        }
        assert accounts == self.accounts
        for account in accounts.values():
            assert account.pending_in >= 0 and account.pending_out >= 0
            # Outside its limits exactly when a reversal flagged it.
            assert account.outside() == account.flagged, f"account {account}"
        # I4: the balances of the timebank sum to zero.
        assert sum(a.balance for a in accounts.values()) == 0
        # I9: a closed account is empty, and closed exactly when its departure is recorded.
        for account in accounts.values():
            if account.closed:
                assert (account.balance, account.pending_in, account.pending_out) == (0, 0, 0)
        assert {a.id for a in accounts.values() if a.closed} == set(self.departures)

        # The records beside the ledger: each gift, grant, opening balance and departure as the
        # model has it, naming the transfer that moved its minutes.
        assert {row.id: tuple(row)[1:] for row in db["gifts"]} == self.gifts
        assert {row.account_id: tuple(row)[1:] for row in db["openings"]} == self.openings
        assert {row.account_id: tuple(row)[1:] for row in db["departures"]} == self.departures

        # I1, I2, I6, I7: exactly the transfers the model expects, each with its two legs, none
        # reversed twice, none lost or changed.
        transfers = {
            row.id: Transfer(
                row.id,
                row.debit_account_id,
                row.credit_account_id,
                row.minutes,
                row.kind,
                row.pending_transfer_id,
                row.reverses_transfer_id,
            )
            for row in db["transfers"]
        }
        assert transfers == self.transfers
        legs = sorted((p.transfer_id, p.account_id, p.minutes) for p in db["postings"])
        expected_legs = sorted(
            leg
            for t in self.transfers.values()
            for leg in ((t.id, t.debit, -t.minutes), (t.id, t.credit, t.minutes))
        )
        assert legs == expected_legs
        reversals = [t.reverses_id for t in transfers.values() if t.reverses_id is not None]
        assert len(reversals) == len(set(reversals)) and set(reversals) == self.reversed
        for t in transfers.values():
            assert t.minutes > 0 and t.debit != t.credit
            if t.kind == "exchange" and t.pending_id is None:
                assert t.minutes <= MAXIMUM

        # Reservations: each in the state the model has, posted at most once.
        reservations = {
            row.id: (
                Reservation(
                    row.id,
                    row.debit_account_id,
                    row.credit_account_id,
                    row.minutes,
                    row.kind,
                    row.memo,
                    row.state,
                ),
                row.resolved,
            )
            for row in db["reservations"]
        }
        assert {k: r for k, (r, _) in reservations.items()} == self.reservations
        assert all(resolved == (r.state != "pending") for r, resolved in reservations.values())
        posted_from = [t.pending_id for t in transfers.values() if t.pending_id is not None]
        assert sorted(posted_from) == sorted(
            r.id for r in self.reservations.values() if r.state == "posted"
        )

        # I8: exactly the keys of accepted requests are stored, each with its answer.
        assert {(k.author, k.key) for k in db["keys"]} == set(self.keys)
        assert all(k.answered for k in db["keys"])


def _name(expected: object) -> str:
    if isinstance(expected, type):
        return expected.__name__
    if isinstance(expected, Replay):
        return "a replay of the original answer"
    if isinstance(expected, AlreadySet):
        return "the opening balance it already has"
    return "success"


def test_ledger_follows_the_model(ledger_runtime: Runtime) -> None:
    run_state_machine_as_test(LedgerMachine, settings=MACHINE_SETTINGS)


async def test_over_the_maximum_is_invalid_whatever_the_balances(ledger, participants, timebank):
    """An exchange above the timebank's maximum is refused as invalid (422) whatever the
    balances, not as a limit (409) that a later change of balance could lift."""
    a = await participants.enrol(timebank, "member", "Ada")
    b = await participants.enrol(timebank, "member", "Bo")
    maximum = timebank.policy.max_exchange_minutes
    with pytest.raises(ValidationFailed):  # a fresh account: only the maximum is broken
        await ledger.post_transfer(timebank.id, a.account_id, b.account_id, maximum + 1)
    await ledger.post_transfer(timebank.id, a.account_id, b.account_id, maximum)
    # Now Ada is 480 minutes down (floor -600), so 481 more also breaks her floor.
    with pytest.raises(ValidationFailed):
        await ledger.post_transfer(timebank.id, a.account_id, b.account_id, maximum + 1)
    with pytest.raises(ValidationFailed):
        await ledger.reserve(timebank.id, a.account_id, b.account_id, maximum + 1)
