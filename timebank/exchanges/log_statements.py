"""The statements that log an exchange: what logging reads (for a caller already known, or for
one looked up in the same statement), and the one statement that writes the exchange, its
first decision, its reservation or transfer (the ledger's pieces) and its idempotency key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    Text,
    cast,
    column,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    values,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CTE, FromClause, ScalarSelect

from timebank.auth.repository import principal_in_timebank_query
from timebank.db import tables
from timebank.db.compose import Expr, arg, compiled_sql
from timebank.db.statements import Connection, fetch, fetch_one
from timebank.exchanges.repository import (
    DECISION_MADE,
    EXCHANGE_RETURNED,
    POLICY_COLUMNS,
    actor_args,
    decisions_cte,
    party,
    written,
    written_columns,
)
from timebank.exchanges.schemas import (
    Actor,
    DecisionRecord,
    ExchangeRecord,
    ExchangeState,
    Party,
    Policy,
    Side,
)
from timebank.ledger import idempotency
from timebank.ledger import repository as ledger
from timebank.ledger.idempotency import KeyedRequest


@dataclass(frozen=True)
class LogContext:
    """All that logging an exchange reads: the stored answer of its idempotency key (None
    when the key is unused or none was sent), the timebank's policy, both parties and the
    category as (id, name) (None for those not in the timebank)."""

    answered: Mapping[str, Any] | None
    policy: Policy
    giver: Party | None
    receiver: Party | None
    category: tuple[int, str] | None


@dataclass(frozen=True)
class CallerAndContext:
    """What ``caller_and_log_context`` read: the caller as ``principal_in_timebank`` reads
    them (None for no live token), and the log context, there only when the caller has a part
    in the timebank."""

    caller: Mapping[str, Any] | None
    context: LogContext | None


def _context_columns(
    timebank: FromClause,
    giver: Expr,
    receiver: Expr,
    category: Expr,
    key: tuple[Expr, Expr, Expr],
    key_readable: ColumnElement[bool] | None = None,
) -> list[Expr]:
    """The columns of a ``LogContext`` for the timebank row ``timebank``, given both parties,
    the category slug and the key's (author, key, fingerprint); the key's stored answer is read
    only where ``key_readable`` holds."""
    c = tables.categories.alias("c")
    named_category = select(func.ROW(c.c.id, c.c.name)).where(
        c.c.timebank_id == timebank.c.id, c.c.slug == category
    )
    return [
        ledger.answered_key_column(timebank.c.id, *key, readable=key_readable).label("answered"),
        *(timebank.c[name] for name in POLICY_COLUMNS),
        _party_row(giver, timebank.c.id).label("giver"),
        _party_row(receiver, timebank.c.id).label("receiver"),
        named_category.scalar_subquery().label("category"),
    ]


def _party_row(participant: Expr, timebank: Expr) -> ScalarSelect[Any]:
    """``party`` as one composite value (id, kind, account_id, takes_part, active)."""
    found = party(participant, timebank)
    return found.with_only_columns(func.ROW(*found.selected_columns)).scalar_subquery()


def key_author(user_id: int) -> str:
    """Who the idempotency key of a logged exchange belongs to: its logger's user (the same
    text as ``_caller_and_log_context`` builds in SQL)."""
    return f"user:{user_id}"


def _log_context() -> str:
    """$1 timebank, $2 giver, $3 receiver, $4 category slug, $5 author, $6 key, $7
    fingerprint."""
    t = tables.timebanks.alias("t")
    columns = _context_columns(t, arg(2), arg(3), arg(4), (arg(5), arg(6), arg(7)))
    return compiled_sql(select(*columns).where(t.c.id == arg(1)))


def _caller_and_log_context() -> str:
    """$1 token hash, $2 timebank slug, $3 giver, $4 receiver, $5 category slug, $6 key, $7
    fingerprint. The CTE ``caller`` is auth's ``principal_in_timebank``; the context is read for
    the timebank of the slug, its key only when the caller has a part in it (as
    ``access_from_row`` decides: a site admin, or any role there)."""
    caller = principal_in_timebank_query(arg(1), arg(2)).cte("caller")
    b = tables.timebanks.alias("b")
    author = literal("user:", Text).concat(caller.c.user_id)
    has_part = or_(caller.c.is_admin, func.cardinality(caller.c.roles) > 0)
    key = (author, arg(6), arg(7))
    columns = _context_columns(b, arg(3), arg(4), arg(5), key, has_part)
    on_timebank = caller.outerjoin(b, b.c.id == caller.c.timebank_id)
    return compiled_sql(select(caller, *columns).select_from(on_timebank))


_LOG_CONTEXT = _log_context()
_CALLER_AND_LOG_CONTEXT = _caller_and_log_context()


def _context(row: Mapping[str, Any]) -> LogContext:
    answered, category = row["answered"], row["category"]
    return LogContext(
        answered=idempotency.stored_result(answered) if answered is not None else None,
        policy=Policy(**{name: row[name] for name in POLICY_COLUMNS}),
        giver=_party(row["giver"]),
        receiver=_party(row["receiver"]),
        category=(category[0], category[1]) if category is not None else None,
    )


def _party(row: Any) -> Party | None:
    if row is None:
        return None
    return Party(id=row[0], kind=row[1], account_id=row[2], takes_part=row[3], active=row[4])


async def log_context(
    conn: Connection,
    timebank_id: int,
    giver_id: int,
    receiver_id: int,
    category: str,
    keyed: KeyedRequest | None,
) -> LogContext:
    """What logging reads, in one statement outside any transaction. The key is written by
    the statement that logs the exchange; a key answered for another request is refused
    here (IdempotencyMismatch)."""
    row = await fetch_one(
        conn,
        _LOG_CONTEXT,
        timebank_id,
        giver_id,
        receiver_id,
        category,
        *idempotency.key_arguments(keyed),
    )
    assert row is not None, "the caller's access names an existing timebank"
    return _context(row)


async def caller_and_log_context(
    conn: Connection,
    token_hash: bytes,
    slug: str,
    giver_id: int,
    receiver_id: int,
    category: str,
    key: str | None,
    fingerprint: bytes,
) -> CallerAndContext:
    """Who the caller of ``token_hash`` is in timebank ``slug`` and, beside them, what
    ``log_context`` reads for them as author of the key: one round trip for both."""
    row = await fetch_one(
        conn,
        _CALLER_AND_LOG_CONTEXT,
        token_hash,
        slug,
        giver_id,
        receiver_id,
        category,
        key,
        fingerprint,
    )
    if row is None:
        return CallerAndContext(caller=None, context=None)
    has_part = row["timebank_id"] is not None and (row["is_admin"] or bool(row["roles"]))
    return CallerAndContext(caller=row, context=_context(row) if has_part else None)


# ---------------------------------------------------------------------------------------------
# The statement that writes.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewExchange:
    """An exchange to log (of category ``category_id``, whose slug is ``category``): what
    the statement that logs it writes, whichever way the policy sends it. Its minutes go from
    the debit account, the receiver's, to the credit account, the giver's; ``keyed`` is the
    request's idempotency key, written answered with the exchange."""

    timebank_id: int
    giver_id: int
    receiver_id: int
    minutes: int
    service_date: date
    category_id: int
    category: str
    description: str
    logged_by_user_id: int
    logged_for: Side
    on_behalf: bool
    debit_account_id: int
    credit_account_id: int
    memo: str
    actor: Actor
    keyed: KeyedRequest | None

    def arguments(self) -> tuple[Any, ...]:
        """$1 to $20 of the statements that log it."""
        author, key, fingerprint = idempotency.key_arguments(self.keyed)
        return (
            *(getattr(self, name) for name in _NEW_COLUMNS),  # $1 to $10
            self.debit_account_id,
            self.credit_account_id,
            self.memo,
            self.actor.user_id,
            self.actor.role,  # $15
            self.actor.on_behalf_of,
            author,
            key,
            fingerprint,
            self.category,  # $20
        )


# The exchange's columns that are $1 to $10 of the statements that log it, as ``NewExchange``
# names them.
_NEW_COLUMNS = (
    "timebank_id",
    "giver_id",
    "receiver_id",
    "minutes",
    "service_date",
    "category_id",
    "description",
    "logged_by_user_id",
    "logged_for",
    "on_behalf",
)


def _logging_statement(
    ledger_write: CTE, written: dict[str, Expr], decisions: Callable[[CTE], Select[Any]]
) -> str:
    """One statement: the ledger's write, the exchange ($1 to $10, then ``written``, over the
    ledger's write), its decisions (``decisions`` of CTE ``logged``), its key answered with it
    ($17 to $19); the rows as written (category slug $20), decisions in order."""
    new = {name: arg(n) for n, name in enumerate(_NEW_COLUMNS, start=1)} | written
    exchange = select(*new.values()).select_from(ledger_write)
    logged = (
        insert(tables.exchanges)
        .from_select(list(new), exchange)
        .returning(*EXCHANGE_RETURNED)
        .cte("logged")
    )
    decided = decisions_cte(decisions(logged))
    answer = func.jsonb_build_object("exchange_id", logged.c.id)
    answered = ledger.key_answer_cte("answered", logged, arg(17), arg(18), arg(19), answer)
    return compiled_sql(
        select(*written_columns(logged, decided, arg(20)))
        .order_by(decided.c.id)
        .add_cte(ledger_write, logged, decided, answered)
    )


def _logged_decision(logged: CTE) -> Select[Any]:
    """The 'log' decision of the exchange, by the actor $14 to $16."""
    return select(
        logged.c.timebank_id,
        logged.c.id,
        literal("log"),
        null(),
        logged.c.state,
        *actor_args(14, 15, 16),
        null(),
    )


def _approved_decisions(logged: CTE) -> Select[Any]:
    """The 'log' decision by the actor $14 to $16, then the 'auto_approve' decision by the
    approver $21 to $23 with reason $24, as logging and then approving would have."""
    decisions = tables.exchange_decisions
    reason = cast(arg(24), Text)
    steps = values(
        column("step", Integer),
        *(column(name, decisions.c[name].type) for name in DECISION_MADE),
        name="d",
    ).data(
        [
            (1, "log", null(), "awaiting_approval", *actor_args(14, 15, 16), null()),
            (2, "auto_approve", "awaiting_approval", "approved", *actor_args(21, 22, 23), reason),
        ]
    )
    return select(
        logged.c.timebank_id, logged.c.id, *(steps.c[name] for name in DECISION_MADE)
    ).order_by(steps.c.step)


# $21 state, $22 review reason.
_reserved = ledger.reserve_cte("reserved", arg(1), arg(11), arg(12), arg(4), arg(13))
_LOG = _logging_statement(
    _reserved,
    {"state": arg(21), "review_reason": arg(22), "pending_transfer_id": _reserved.c.id},
    _logged_decision,
)

# $21, $22, $23 the approver (user, role, on behalf of), $24 the approval's reason.
_posted = ledger.post_transfer_cte("posted", arg(1), arg(11), arg(12), arg(4), arg(13))
_LOG_APPROVED = _logging_statement(
    _posted, {"state": literal("approved"), "transfer_id": _posted.c.id}, _approved_decisions
)


async def _unless_keyed(
    conn: Connection, sql: str, *args: Any
) -> list[tuple[ExchangeRecord, DecisionRecord]] | None:
    """The rows of a logging statement, or None when another request under its key was
    written first (then this statement wrote nothing)."""
    try:
        return [written(row) for row in await fetch(conn, sql, *args)]
    except Exception as exc:
        if idempotency.written_meanwhile(exc):
            return None
        raise


async def insert_exchange(
    conn: Connection, new: NewExchange, *, state: ExchangeState, review_reason: str | None
) -> tuple[ExchangeRecord, DecisionRecord] | None:
    """Log ``new`` in one statement: reserve its minutes, insert it in ``state`` with that
    reservation and its 'log' decision, write its key answered with it; return both rows as
    written, or None (nothing written) when a request under the key was written meanwhile."""
    rows = await _unless_keyed(conn, _LOG, *new.arguments(), state, review_reason)
    return rows[0] if rows else None


async def insert_approved_exchange(
    conn: Connection, new: NewExchange, *, approver: Actor, approval_reason: str
) -> tuple[ExchangeRecord, list[DecisionRecord]] | None:
    """Log ``new`` as the policy approves it at once, in one statement: post its transfer,
    insert it as approved with that transfer, record both decisions ('log' by its actor, then
    'auto_approve' by ``approver``) as logging and then approving would have, write its key
    answered with it; None (nothing written) when a request under the key was written
    meanwhile."""
    rows = await _unless_keyed(
        conn,
        _LOG_APPROVED,
        *new.arguments(),
        approver.user_id,
        approver.role,
        approver.on_behalf_of,
        approval_reason,
    )
    if not rows:
        return None
    return rows[-1][0], [decision for _, decision in rows]
