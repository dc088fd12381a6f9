"""The statements that log an exchange: what logging reads (for a caller already known, or for
one looked up in the same statement), and the one statement that writes the exchange, its
first decision, its reservation or transfer (the ledger's pieces) and its idempotency key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from timebank.db.statements import Connection, fetch, fetch_one
from timebank.exchanges.repository import (
    POLICY_COLUMNS,
    RETURNED_DECISION,
    RETURNED_EXCHANGE,
    SELECTED_DECISION,
    TAKES_PART,
    selected_exchange,
    written,
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


def _party_column(participant: str, timebank: str) -> str:
    return (
        f"(SELECT ROW(p.id, p.kind, a.id, {TAKES_PART}) FROM participants p"
        " JOIN accounts a ON a.participant_id = p.id AND a.timebank_id = p.timebank_id"
        f" WHERE p.id = {participant} AND p.timebank_id = {timebank})"
    )


def _context_columns(
    timebank: str,
    participants: tuple[str, str],
    category: str,
    key: tuple[str, str, str],
    key_readable: str = "true",
) -> str:
    """The columns of a ``LogContext`` for the timebank row aliased ``timebank``, given the
    placeholders of both parties, the category slug and the key's (author, key, fingerprint);
    the key's stored answer is read only where ``key_readable`` holds."""
    return (
        f"{ledger.answered_key_column(f'{timebank}.id', *key, readable=key_readable)} AS answered,"
        f" {', '.join(f'{timebank}.{name}' for name in POLICY_COLUMNS)},"
        f" {_party_column(participants[0], f'{timebank}.id')} AS giver,"
        f" {_party_column(participants[1], f'{timebank}.id')} AS receiver,"
        " (SELECT ROW(c.id, c.name) FROM categories c"
        f"   WHERE c.timebank_id = {timebank}.id AND c.slug = {category}) AS category"
    )


def key_author(user_id: int) -> str:
    """Who the idempotency key of a logged exchange belongs to: its logger's user (the same
    text as ``CALLER_KEY_AUTHOR`` in SQL)."""
    return f"user:{user_id}"


CALLER_KEY_AUTHOR = "('user:' || caller.user_id)"
CALLER_HAS_PART = "(caller.is_admin OR cardinality(caller.roles) > 0)"

# $1 timebank, $2 giver, $3 receiver, $4 category slug, $5 author, $6 key, $7 fingerprint.
_LOG_CONTEXT = (
    f"SELECT {_context_columns('t', ('$2', '$3'), '$4', ('$5', '$6', '$7'))}"
    " FROM timebanks t WHERE t.id = $1"
)

# $1 token hash, $2 timebank slug, $3 giver, $4 receiver, $5 category slug, $6 key,
# $7 fingerprint. The CTE ``caller`` is auth's ``principal_in_timebank``, word for word
# (tests/exchanges/test_one_rule.py holds them to the same rows); the context is read for
# the timebank of the slug, its key only when the caller has a part in it (as
# ``access_from_row`` decides: a site admin, or any role there).
_CALLER_AND_LOG_CONTEXT = (
    "WITH caller AS ("
    "  SELECT t.id AS token_id, u.id AS user_id, u.email, u.is_admin, b.id AS timebank_id,"
    "   ARRAY(SELECT r.role FROM timebank_roles r"
    "         WHERE r.user_id = u.id AND r.timebank_id = b.id) AS roles,"
    "   (SELECT p.id FROM participants p"
    "    WHERE p.user_id = u.id AND p.timebank_id = b.id) AS participant_id"
    "  FROM api_tokens t JOIN users u ON u.id = t.user_id"
    "  LEFT JOIN timebanks b ON b.slug = $2"
    "  WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
    "   AND (t.expires_at IS NULL OR t.expires_at > now()))"
    " SELECT caller.*, "
    + _context_columns("b", ("$3", "$4"), "$5", (CALLER_KEY_AUTHOR, "$6", "$7"), CALLER_HAS_PART)
    + " FROM caller LEFT JOIN timebanks b ON b.id = caller.timebank_id"
)


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
    return Party(id=row[0], kind=row[1], account_id=row[2], takes_part=row[3])


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
            self.timebank_id,  # $1
            self.giver_id,
            self.receiver_id,
            self.minutes,
            self.service_date,  # $5
            self.category_id,
            self.description,
            self.logged_by_user_id,
            self.logged_for,
            self.on_behalf,  # $10
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


def _logging_statement(ledger_cte: str, logged_cte: str, decided_cte: str) -> str:
    """One statement: the ledger's write, the exchange, its decisions, its key answered with
    it; the rows as written, decisions in order."""
    return (
        f"WITH {ledger_cte}, logged AS ({logged_cte} RETURNING {RETURNED_EXCHANGE}),"
        f" decided AS ({decided_cte} RETURNING {RETURNED_DECISION}),"
        f" {ledger.key_answer_cte('answered', 'logged', '$17', '$18', '$19', _ANSWER)}"
        f" SELECT {selected_exchange('$20')}, {SELECTED_DECISION}"
        " FROM logged, decided ORDER BY decided.id"
    )


_ANSWER = "jsonb_build_object('exchange_id', logged.id)"
_LOGGED = (
    "INSERT INTO exchanges (timebank_id, giver_id, receiver_id, minutes, service_date,"
    " category_id, description, logged_by_user_id, logged_for, on_behalf, state, {columns})"
    " SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, {values}"
)

# $21 state, $22 review reason.
_LOG = _logging_statement(
    ledger.reserve_cte("reserved", "$1", "$11", "$12", "$4", "$13"),
    _LOGGED.format(
        columns="review_reason, pending_transfer_id", values="$21, $22, reserved.id FROM reserved"
    ),
    "INSERT INTO exchange_decisions (timebank_id, exchange_id, action, from_state,"
    "  to_state, actor_user_id, actor_role, on_behalf_of)"
    " SELECT timebank_id, id, 'log', NULL, state, CAST($14 AS bigint),"
    "  CAST($15 AS text), CAST($16 AS bigint) FROM logged",
)

# $21, $22, $23 the approver (user, role, on behalf of), $24 the approval's reason.
_LOG_APPROVED = _logging_statement(
    ledger.post_transfer_cte("posted", "$1", "$11", "$12", "$4", "$13"),
    _LOGGED.format(columns="transfer_id", values="'approved', posted.id FROM posted"),
    "INSERT INTO exchange_decisions (timebank_id, exchange_id, action, from_state,"
    "  to_state, actor_user_id, actor_role, on_behalf_of, reason)"
    " SELECT logged.timebank_id, logged.id, d.action, d.from_state, d.to_state,"
    "  d.actor_user_id, d.actor_role, d.on_behalf_of, d.reason"
    " FROM logged, (VALUES"
    "  (1, 'log', NULL, 'awaiting_approval', CAST($14 AS bigint),"
    "   CAST($15 AS text), CAST($16 AS bigint), NULL),"
    "  (2, 'auto_approve', 'awaiting_approval', 'approved',"
    "   CAST($21 AS bigint), CAST($22 AS text), CAST($23 AS bigint), CAST($24 AS text))"
    " ) AS d (step, action, from_state, to_state, actor_user_id, actor_role,"
    "  on_behalf_of, reason)"
    " ORDER BY d.step",
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
