"""Logging an exchange: what is refused before any read, then one statement that reads all
that logging needs and one that writes it all (``exchanges.log_statements``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Protocol

from timebank.auth.schemas import TimebankAccess
from timebank.db.statements import Connection
from timebank.errors import ValidationFailed, field_error
from timebank.exchanges import policy
from timebank.exchanges.decisions import AUTO_APPROVAL_REASON, as_detail, detail, review_reasons
from timebank.exchanges.log_statements import (
    LogContext,
    NewExchange,
    caller_and_log_context,
    insert_approved_exchange,
    insert_exchange,
    key_author,
    log_context,
)
from timebank.exchanges.schemas import (
    EARLIEST_SERVICE_DATE,
    POLICY_ACTOR,
    ExchangeCreate,
    LogResult,
    Party,
    Policy,
)
from timebank.ledger.idempotency import KeyedRequest, fingerprint

NO_PART_IN_EXCHANGES = (
    "this participant's user is a funder of the timebank (or has no role in it) and takes no"
    " part in exchanges"
)


class Caller(Protocol):
    """A caller not yet looked up (``timebank.auth.deps.Credentials``): the hash of their
    token, the timebank of the path, and the auth layer's verdict on the row read for them
    (``principal_in_timebank``'s columns, None for no live token): their access, or a
    refusal."""

    @property
    def token_hash(self) -> bytes: ...

    @property
    def slug(self) -> str: ...

    def access(self, found: Mapping[str, Any] | None) -> TimebankAccess: ...


def request_fingerprint(data: ExchangeCreate) -> bytes:
    return fingerprint("log_exchange", data.model_dump(mode="json"))


def keyed_request(
    access: TimebankAccess, key: str | None, request_fingerprint: bytes
) -> KeyedRequest | None:
    if key is None:
        return None
    return KeyedRequest(key_author(access.principal.user_id), key, request_fingerprint)


async def log_for(
    conn: Connection, *, access: TimebankAccess, data: ExchangeCreate, key: str | None
) -> LogResult:
    """Log for a caller whose access is known and checked (``check``): read, then write."""
    keyed = keyed_request(access, key, request_fingerprint(data))
    while True:
        context = await log_context(
            conn, access.timebank_id, data.giver_id, data.receiver_id, data.category, keyed
        )
        logged = await _write(conn, access, data, keyed, context)
        if logged is not None:
            return logged


async def log_for_caller(
    conn: Connection, *, caller: Caller, data: ExchangeCreate, key: str | None
) -> LogResult:
    """Log for a caller looked up in the statement that reads: the auth layer's verdict on
    them comes first, then the same checks as ``log_for``. A key answered for another request
    is refused by that statement, so before the checks of who may log what."""
    request = request_fingerprint(data)
    while True:
        found = await caller_and_log_context(
            conn,
            caller.token_hash,
            caller.slug,
            data.giver_id,
            data.receiver_id,
            data.category,
            key,
            request,
        )
        access = caller.access(found.caller)
        check(access, data, key)
        assert found.context is not None, "a caller with access has a part in the timebank"
        keyed = keyed_request(access, key, request)
        logged = await _write(conn, access, data, keyed, found.context)
        if logged is not None:
            return logged


async def _write(
    conn: Connection,
    access: TimebankAccess,
    data: ExchangeCreate,
    keyed: KeyedRequest | None,
    context: LogContext,
) -> LogResult | None:
    """The exchange as the one statement that logs it wrote it (or as logged before under the
    key); None when another request under the key was written meanwhile: read again."""
    actor, logged_for, on_behalf = policy.who_logs(access, data)
    timebank_id, rules = access.timebank_id, context.policy
    if context.answered is not None:
        exchange_id = int(context.answered["exchange_id"])
        return LogResult(await detail(conn, timebank_id, exchange_id), replayed=True)
    giver, receiver, (category_id, category_name) = _require_parties_and_category(data, context)
    state = policy.state_after_logging(rules, on_behalf=on_behalf, logged_for=logged_for)
    reasons: list[str] = []
    if state == "awaiting_approval":
        reasons = await review_reasons(
            conn, rules, timebank_id, giver, receiver, data.minutes, data.service_date
        )
    new = NewExchange(
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
        memo=memo(category_name, data.description),
        actor=actor,
        keyed=keyed,
    )
    if state == "awaiting_approval" and policy.approves_automatically(rules, reasons):
        # Approved as it is logged: its transfer is posted by the statement that logs it (a
        # reservation made and posted in the same transaction would be seen by nobody).
        approved = await insert_approved_exchange(
            conn, new, approver=POLICY_ACTOR, approval_reason=AUTO_APPROVAL_REASON
        )
        if approved is None:
            return None
        return LogResult(as_detail(*approved), replayed=False)
    logged = await insert_exchange(conn, new, state=state, review_reason="; ".join(reasons) or None)
    if logged is None:
        return None
    return LogResult(as_detail(logged[0], [logged[1]]), replayed=False)


def check(access: TimebankAccess, data: ExchangeCreate, key: str | None) -> None:
    """Refusals of a log that need no database beyond the caller's access: who may log it,
    and the request itself."""
    policy.who_logs(access, data)
    _check_request(data, key, today=date.today())


def _check_request(data: ExchangeCreate, key: str | None, *, today: date) -> None:
    if data.giver_id == data.receiver_id:
        raise ValidationFailed(
            "the giver and the receiver must be two different participants",
            errors=[field_error("receiver_id", "must differ from giver_id")],
        )
    check_service_date(data.service_date, today=today)
    check_key(key)


def check_service_date(service_date: date, *, today: date) -> None:
    """Refuse a service date in the future, or too far back to be believed."""
    if service_date > today:
        raise ValidationFailed(
            "the service date is in the future; log help once it has been given",
            errors=[field_error("service_date", f"must be {today.isoformat()} or earlier")],
        )
    if service_date < EARLIEST_SERVICE_DATE:
        raise ValidationFailed(
            "the service date is too far back to be believed",
            errors=[
                field_error("service_date", f"must be {EARLIEST_SERVICE_DATE.isoformat()} or later")
            ],
        )


def check_key(key: str | None) -> None:
    """Refuse an Idempotency-Key of the wrong length."""
    if key is not None and not 1 <= len(key) <= 255:
        raise ValidationFailed(
            "an Idempotency-Key has 1 to 255 characters",
            errors=[
                {"key": "Idempotency-Key", "message": "1 to 255 characters", "source": "header"}
            ],
        )


def _require_parties_and_category(
    data: ExchangeCreate, context: LogContext
) -> tuple[Party, Party, tuple[int, str]]:
    rules: Policy = context.policy
    giver, receiver, category = context.giver, context.receiver, context.category
    errors = []
    for name, party in (("giver_id", giver), ("receiver_id", receiver)):
        if party is None:
            errors.append(field_error(name, "no such participant in this timebank"))
        elif not party.takes_part:
            # Nobody could ever confirm it: the reservation would be held for good.
            errors.append(field_error(name, NO_PART_IN_EXCHANGES))
    if category is None:
        errors.append(field_error("category", "no such category in this timebank"))
    if data.minutes > rules.max_exchange_minutes:
        errors.append(
            field_error("minutes", f"at most {rules.max_exchange_minutes} minutes per exchange")
        )
    if errors or giver is None or receiver is None or category is None:
        names = ", ".join(error["key"] for error in errors)
        raise ValidationFailed(f"please check: {names}", errors=errors)
    policy.require_active_parties((("giver_id", giver), ("receiver_id", receiver)))
    return giver, receiver, category


def memo(category_name: str, description: str) -> str:
    """What the statement shows for the exchange's transfer."""
    summary = " ".join(description.split())
    memo = f"{category_name}: {summary}" if summary else category_name
    return memo if len(memo) <= 200 else memo[:199] + "…"
