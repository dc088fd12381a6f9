"""Exchanges of time through their life (DESIGN.md §2): logged, confirmed or disputed, approved
or rejected, cancelled, reversed; and a participant's balance and statement, for those who
may see them.

Every write is one short transaction: the exchange row is locked first (decisions on one
exchange take turns), then the ledger moves inside the same transaction, and the decision is
recorded with the new state. Refusals come out as typed errors; deadlocks are retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import fields, replace
from datetime import date
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.auth.schemas import TimebankAccess
from timebank.db.transactions import run_in_raw_statements, run_in_raw_transaction
from timebank.errors import (
    InvalidTransition,
    NotFound,
    TimebankError,
    ValidationFailed,
    field_error,
)
from timebank.exchanges import policy, repository
from timebank.exchanges.repository import Connection
from timebank.exchanges.schemas import (
    EARLIEST_SERVICE_DATE,
    POLICY_ACTOR,
    Actor,
    BulkApproveResult,
    BulkError,
    BulkOutcome,
    DecisionRecord,
    ExchangeCreate,
    ExchangeDetail,
    ExchangeFilters,
    ExchangePage,
    ExchangePublic,
    ExchangeRecord,
    ExchangeState,
    LogResult,
    Party,
    Policy,
)
from timebank.ledger import repository as ledger_repository
from timebank.ledger.repository import request_hash

T = TypeVar("T")

AUTO_APPROVAL_REASON = "approved automatically under the timebank's policy"
NO_PART_IN_EXCHANGES = (
    "this participant's user is a funder of the timebank (or has no role in it) and takes no"
    " part in exchanges"
)


class Exchanges:
    """Log exchanges and take decisions on them, for whoever the caller is in the timebank."""

    def __init__(self, engine: AsyncEngine, *, max_retries: int = 8) -> None:
        self._engine = engine
        self._max_retries = max_retries

    async def _transaction(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """``work`` in one transaction on the plain asyncpg connection (see ``Connection``)."""
        return await run_in_raw_transaction(self._engine, work, max_retries=self._max_retries)

    # -- logging -------------------------------------------------------------------------------

    async def log(
        self,
        access: TimebankAccess,
        data: ExchangeCreate,
        idempotency_key: str | None = None,
    ) -> LogResult:
        """Log an exchange: reserve its minutes on both accounts, record who logged it, then
        let the timebank's policy move it on. A retry with the same idempotency key and body
        returns the exchange logged the first time, and logs nothing new."""
        fingerprint = request_hash("log_exchange", data.model_dump(mode="json"))

        async def read(conn: Connection) -> tuple[TimebankAccess, repository.LogContext]:
            return access, await repository.log_context(
                conn,
                timebank_id=access.timebank_id,
                giver_id=data.giver_id,
                receiver_id=data.receiver_id,
                category=data.category,
                author=_author(access),
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
            )

        _checked(access, data, idempotency_key)
        return await self._log(read, data, idempotency_key, fingerprint)

    async def log_as(
        self,
        token_hash: bytes,
        slug: str,
        authorize: Callable[[Mapping[str, Any] | None], TimebankAccess],
        data: ExchangeCreate,
        idempotency_key: str | None = None,
    ) -> LogResult:
        """``log`` for a caller not yet looked up: who the token of ``token_hash`` is and what
        they are in timebank ``slug`` are read in the same statement as what logging reads,
        one round trip and one pooled connection fewer. ``authorize`` turns that row (None for
        no live token) into the caller's access or refuses, as the access dependency would.
        A stored key answered for another request is refused (IdempotencyMismatch) by that
        statement, so before the checks of who may log what (``log`` makes those first)."""
        fingerprint = request_hash("log_exchange", data.model_dump(mode="json"))

        async def read(conn: Connection) -> tuple[TimebankAccess, repository.LogContext]:
            row = await repository.caller_and_log_context(
                conn,
                token_hash=token_hash,
                slug=slug,
                giver_id=data.giver_id,
                receiver_id=data.receiver_id,
                category=data.category,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
            )
            access = authorize(row)
            assert row is not None, "authorize refuses a missing caller"
            _checked(access, data, idempotency_key)
            return access, repository.log_context_of(row)

        return await self._log(read, data, idempotency_key, fingerprint)

    async def _log(
        self,
        read: Callable[[Connection], Awaitable[tuple[TimebankAccess, repository.LogContext]]],
        data: ExchangeCreate,
        idempotency_key: str | None,
        fingerprint: bytes,
    ) -> LogResult:
        async def work(conn: Connection) -> LogResult:
            access, (answered, rules, giver, receiver, category) = await read(conn)
            actor, logged_for, on_behalf = policy.who_logs(access, data)
            timebank_id = access.timebank_id
            author = _author(access)
            if answered is not None:
                exchange_id = int(answered["exchange_id"])
                return LogResult(await _detail(conn, timebank_id, exchange_id), replayed=True)
            giver, receiver, (category_id, category_name) = _require_parties_and_category(
                data, rules, giver, receiver, category
            )
            state = policy.state_after_logging(rules, on_behalf=on_behalf, logged_for=logged_for)
            reasons: list[str] = []
            if state == "awaiting_approval":
                reasons = await _review_reasons(
                    conn, rules, timebank_id, giver, receiver, data.minutes, data.service_date
                )
            approving = state == "awaiting_approval" and policy.approves_automatically(
                rules, reasons
            )
            new = repository.NewExchange(
                timebank_id=timebank_id,
                giver_id=giver.id,
                receiver_id=receiver.id,
                minutes=data.minutes,
                service_date=data.service_date,
                category_id=category_id,
                category=data.category,
                description=data.description,
                logged_by_user_id=access.principal.user_id,
                logged_for=logged_for,
                on_behalf=on_behalf,
                debit_account_id=receiver.account_id,
                credit_account_id=giver.account_id,
                memo=_memo(category_name, data.description),
                actor=actor,
                answer=repository.KeyAnswer(author, idempotency_key, fingerprint)
                if idempotency_key is not None
                else None,
            )
            # One statement writes it all and comes back with the rows as written, so the
            # answer needs no reads.
            if approving:
                # Approved as it is logged: the statement that logs it posts its transfer (a
                # reservation made and posted in the same transaction would be seen by nobody).
                approved = await repository.insert_approved_exchange(
                    conn, new, approver=POLICY_ACTOR, approval_reason=AUTO_APPROVAL_REASON
                )
                if approved is None:
                    return await work(conn)  # its key was written meanwhile: look again
                exchange, decisions = approved
            else:
                # The minutes are reserved by the statement that inserts the exchange.
                logged = await repository.insert_exchange(
                    conn, new, state=state, review_reason="; ".join(reasons) or None
                )
                if logged is None:
                    return await work(conn)  # its key was written meanwhile: look again
                exchange, decisions = logged[0], [logged[1]]
            return LogResult(_as_detail(exchange, decisions), replayed=False)

        # Reads, then one statement that writes (its own transaction): no BEGIN and COMMIT
        # round trips, and the rows it locks are let go as soon as it is done.
        return await run_in_raw_statements(self._engine, work, max_retries=self._max_retries)

    # -- reading -------------------------------------------------------------------------------

    async def get(self, access: TimebankAccess, exchange_id: int) -> ExchangeDetail:
        """One exchange with its decision history; members see only their own."""
        policy.require_exchange_reader(access)
        async with self._engine.connect() as conn:
            exchange = await repository.get_exchange(conn, access.timebank_id, exchange_id)
            policy.require_visible(access, exchange)
            return await _detail(conn, access.timebank_id, exchange_id)

    async def list(self, access: TimebankAccess, filters: ExchangeFilters) -> ExchangePage:
        """Exchanges by ascending id, filtered; members see only those they are party to."""
        policy.require_exchange_reader(access)
        party_of = None if access.can_manage else access.party_id
        async with self._engine.connect() as conn:
            rows = await repository.list_exchanges(
                conn, access.timebank_id, filters, party_of=party_of, limit=filters.limit + 1
            )
        page = rows[: filters.limit]
        return ExchangePage(
            items=[ExchangePublic.model_validate(_fields(row)) for row in page],
            next_after_id=page[-1].id if len(rows) > filters.limit else None,
        )

    # -- decisions -----------------------------------------------------------------------------

    async def decide(
        self, access: TimebankAccess, exchange_id: int, action: str, reason: str | None = None
    ) -> ExchangeDetail:
        """Take one decision (confirm, dispute, approve, reject, cancel, reverse) on an
        exchange: who may, from which state, with which effect on the ledger."""
        policy.require_may_attempt(access, action)
        cleaned = policy.clean_reason(action, reason)
        timebank_id = access.timebank_id

        async def work(conn: Connection) -> ExchangeDetail:
            exchange = policy.require_visible(
                access, await repository.get_exchange(conn, timebank_id, exchange_id, lock=True)
            )
            actor = policy.decider(access, exchange, action)
            policy.require_from_state(action, exchange)
            await _EFFECTS[action](conn, exchange, actor, cleaned)
            return await _detail(conn, timebank_id, exchange_id)

        return await self._transaction(work)

    async def approve_many(
        self, access: TimebankAccess, exchange_ids: Sequence[int]
    ) -> BulkApproveResult:
        """Approve each exchange in a transaction of its own: one that cannot be approved is
        reported beside the others and does not hold them back."""
        policy.require_may_attempt(access, "approve")
        results = []
        for exchange_id in exchange_ids:
            try:
                approved = await self.decide(access, exchange_id, "approve")
            except TimebankError as error:
                results.append(
                    BulkOutcome(
                        id=exchange_id,
                        state=await self._state_seen_by(access, exchange_id),
                        error=BulkError(
                            type=error.type_uri, status=error.status_code, detail=error.detail
                        ),
                    )
                )
            else:
                results.append(BulkOutcome(id=exchange_id, state=approved.state))
        return BulkApproveResult(results=results)

    async def _state_seen_by(
        self, access: TimebankAccess, exchange_id: int
    ) -> ExchangeState | None:
        async with self._engine.connect() as conn:
            exchange = await repository.get_exchange(conn, access.timebank_id, exchange_id)
        try:
            return policy.require_visible(access, exchange).state
        except NotFound:
            return None


# ---------------------------------------------------------------------------------------------
# The steps of a transaction (each takes the caller's connection).
# ---------------------------------------------------------------------------------------------


def _author(access: TimebankAccess) -> str:
    """Who an idempotency key of a logged exchange belongs to."""
    return f"user:{access.principal.user_id}"


def _checked(access: TimebankAccess, data: ExchangeCreate, idempotency_key: str | None) -> None:
    """Refusals of a log that need no database beyond the caller's access: who may log it,
    and the request itself."""
    policy.who_logs(access, data)
    _check_request(data, idempotency_key, today=date.today())


def _check_request(data: ExchangeCreate, idempotency_key: str | None, *, today: date) -> None:
    """What can be refused without looking anything up."""
    if data.giver_id == data.receiver_id:
        raise ValidationFailed(
            "the giver and the receiver must be two different participants",
            errors=[field_error("receiver_id", "must differ from giver_id")],
        )
    if data.service_date > today:
        raise ValidationFailed(
            "the service date is in the future; log help once it has been given",
            errors=[field_error("service_date", f"must be {today.isoformat()} or earlier")],
        )
    if data.service_date < EARLIEST_SERVICE_DATE:
        raise ValidationFailed(
            "the service date is too far back to be believed",
            errors=[
                field_error("service_date", f"must be {EARLIEST_SERVICE_DATE.isoformat()} or later")
            ],
        )
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise ValidationFailed(
            "an Idempotency-Key has 1 to 255 characters",
            errors=[
                {"key": "Idempotency-Key", "message": "1 to 255 characters", "source": "header"}
            ],
        )


def _require_parties_and_category(
    data: ExchangeCreate,
    rules: Policy,
    giver: Party | None,
    receiver: Party | None,
    category: tuple[int, str] | None,
) -> tuple[Party, Party, tuple[int, str]]:
    errors = []
    for key, party in (("giver_id", giver), ("receiver_id", receiver)):
        if party is None:
            errors.append(field_error(key, "no such participant in this timebank"))
        elif not party.takes_part:
            # Nobody could ever confirm it: the reservation would be held for good.
            errors.append(field_error(key, NO_PART_IN_EXCHANGES))
    if category is None:
        errors.append(field_error("category", "no such category in this timebank"))
    if data.minutes > rules.max_exchange_minutes:
        errors.append(
            field_error("minutes", f"at most {rules.max_exchange_minutes} minutes per exchange")
        )
    if errors or giver is None or receiver is None or category is None:
        fields = ", ".join(error["key"] for error in errors)
        raise ValidationFailed(f"please check: {fields}", errors=errors)
    return giver, receiver, category


async def _review_reasons(
    conn: Connection,
    rules: Policy,
    timebank_id: int,
    giver: Party,
    receiver: Party,
    minutes: int,
    service_date: date,
) -> list[str]:
    """The review rules an 'automatic unless' policy fires for this exchange (none for other
    policies: a coordinator reviews everything, or nothing is reviewed)."""
    if rules.approval_mode != "automatic_unless":
        return []
    first_timers: set[int] = set()
    if rules.review_first_exchange:
        first_timers = await repository.first_timers(conn, timebank_id, [giver.id, receiver.id])
    return policy.review_reasons(
        rules,
        minutes=minutes,
        service_date=service_date,
        party_kinds=(giver.kind, receiver.kind),
        first_timers=first_timers,
        today=date.today(),
    )


async def _move(
    conn: Connection, exchange: ExchangeRecord, action: str, actor: Actor, **changes
) -> tuple[ExchangeRecord, DecisionRecord]:
    """The exchange and the decision as written."""
    to_state = "approved" if action == "auto_approve" else policy.TRANSITIONS[action].to_state
    moved = await repository.move_exchange(
        conn, exchange, action=action, to_state=to_state, actor=actor, **changes
    )
    if moved is None:  # the row is locked, so only a bug gets here; refuse rather than guess
        raise InvalidTransition(f"exchange {exchange.id} changed while it was being decided")
    return moved


async def _approve(
    conn: Connection,
    exchange: ExchangeRecord,
    actor: Actor,
    action: str,
    reason: str | None,
) -> tuple[ExchangeRecord, DecisionRecord]:
    assert exchange.pending_transfer_id is not None
    # The reservation is posted by the statement that moves the exchange: one round trip.
    return await _move(conn, exchange, action, actor, reason=reason, post_pending=True)


async def _release(
    conn: Connection, exchange: ExchangeRecord, actor: Actor, action: str, reason: str | None
) -> None:
    assert exchange.pending_transfer_id is not None
    await ledger_repository.void_pending(
        conn, timebank_id=exchange.timebank_id, pending_id=exchange.pending_transfer_id, key=None
    )
    await _move(conn, exchange, action, actor, reason=reason)


async def _confirm(
    conn: Connection, exchange: ExchangeRecord, actor: Actor, reason: str | None
) -> None:
    rules = await repository.get_policy(conn, exchange.timebank_id)
    giver = await repository.get_party(conn, exchange.timebank_id, exchange.giver_id)
    receiver = await repository.get_party(conn, exchange.timebank_id, exchange.receiver_id)
    assert giver is not None and receiver is not None
    reasons = await _review_reasons(
        conn, rules, exchange.timebank_id, giver, receiver, exchange.minutes, exchange.service_date
    )
    await _move(
        conn, exchange, "confirm", actor, reason=reason, review_reason="; ".join(reasons) or None
    )
    if policy.approves_automatically(rules, reasons):
        awaiting = replace(exchange, state="awaiting_approval")
        await _approve(conn, awaiting, POLICY_ACTOR, "auto_approve", AUTO_APPROVAL_REASON)


async def _dispute(
    conn: Connection, exchange: ExchangeRecord, actor: Actor, reason: str | None
) -> None:
    await _move(conn, exchange, "dispute", actor, reason=reason)


async def _approve_decision(
    conn: Connection, exchange: ExchangeRecord, actor: Actor, reason: str | None
) -> None:
    await _approve(conn, exchange, actor, "approve", reason)


async def _reject(
    conn: Connection, exchange: ExchangeRecord, actor: Actor, reason: str | None
) -> None:
    await _release(conn, exchange, actor, "reject", reason)


async def _cancel(
    conn: Connection, exchange: ExchangeRecord, actor: Actor, reason: str | None
) -> None:
    await _release(conn, exchange, actor, "cancel", reason)


async def _reverse(
    conn: Connection, exchange: ExchangeRecord, actor: Actor, reason: str | None
) -> None:
    assert exchange.transfer_id is not None and reason is not None
    reversal, _ = await ledger_repository.reverse(
        conn,
        timebank_id=exchange.timebank_id,
        transfer_id=exchange.transfer_id,
        reason=reason,
        key=None,
    )
    await _move(conn, exchange, "reverse", actor, reason=reason, reversal_transfer_id=reversal.id)


_EFFECTS: dict[str, Callable[[Connection, ExchangeRecord, Actor, str | None], Awaitable[None]]] = {
    "confirm": _confirm,
    "dispute": _dispute,
    "approve": _approve_decision,
    "reject": _reject,
    "cancel": _cancel,
    "reverse": _reverse,
}


async def _detail(conn: Connection, timebank_id: int, exchange_id: int) -> ExchangeDetail:
    exchange = await repository.get_exchange(conn, timebank_id, exchange_id)
    if exchange is None:
        raise NotFound(f"exchange {exchange_id} not found in this timebank")
    return _as_detail(exchange, await repository.decisions_of(conn, timebank_id, exchange_id))


def _as_detail(exchange: ExchangeRecord, decisions: Sequence[DecisionRecord]) -> ExchangeDetail:
    return ExchangeDetail.model_validate(
        {**_fields(exchange), "decisions": [_fields(decision) for decision in decisions]}
    )


def _fields(record: ExchangeRecord | DecisionRecord) -> dict[str, Any]:
    """A record's fields as they are (``asdict`` deep-copies every value on the way)."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _memo(category_name: str, description: str) -> str:
    """What the statement shows for the exchange's transfer."""
    summary = " ".join(description.split())
    memo = f"{category_name}: {summary}" if summary else category_name
    return memo if len(memo) <= 200 else memo[:199] + "…"
