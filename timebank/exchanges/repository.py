"""SQL of exchange rows and their decisions, the timebank's policy and the parties of an
exchange. Every function takes the caller's connection, so it composes into the caller's
transaction. (The statements that log an exchange are in ``exchanges.log_statements``.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Select,
    Text,
    and_,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.sql.selectable import CTE, FromClause

from timebank.db import tables
from timebank.db.compose import Expr, arg, compiled_sql, unless_null
from timebank.db.statements import Connection, fetch, fetch_one
from timebank.exchanges.schemas import (
    Actor,
    DecisionRecord,
    ExchangeFilters,
    ExchangeRecord,
    ExchangeState,
    Party,
    Policy,
)
from timebank.ledger import repository as ledger

__all__ = ["Connection"]

POLICY_COLUMNS = (
    "confirmation_required",
    "approval_mode",
    "review_above_minutes",
    "review_backdated_days",
    "review_organisation",
    "review_first_exchange",
    "max_exchange_minutes",
)


def takes_part(p: FromClause) -> Expr:
    """Whether participant ``p`` takes part in exchanges, as ``TimebankAccess.party_id`` decides
    for a caller: no user (organisations, people who never sign in), or a user who is a site
    admin or a member or coordinator here (not a funder only, nor role-less).
    tests/exchanges/test_one_rule.py holds the two to the same answers."""
    pu = tables.users.alias("pu")
    r = tables.timebank_roles.alias("r")
    return or_(
        p.c.user_id.is_(None),
        select(literal(1)).where(pu.c.id == p.c.user_id, pu.c.is_admin).exists(),
        select(literal(1))
        .where(
            r.c.user_id == p.c.user_id,
            r.c.timebank_id == p.c.timebank_id,
            r.c.role.in_(("member", "coordinator")),
        )
        .exists(),
    )


def party(participant: Expr, timebank: Expr) -> Select[Any]:
    """Participant ``participant`` of timebank ``timebank`` as a party to an exchange: its id,
    kind, account, whether it takes part and whether it is active (not deactivated)."""
    p = tables.participants.alias("p")
    a = tables.accounts.alias("a")
    account = a.c.participant_id == p.c.id, a.c.timebank_id == p.c.timebank_id
    return (
        select(
            p.c.id,
            p.c.kind,
            a.c.id.label("account_id"),
            takes_part(p).label("takes_part"),
            p.c.deactivated_at.is_(None).label("active"),
        )
        .select_from(p.join(a, and_(*account)))
        .where(p.c.id == participant, p.c.timebank_id == timebank)
    )


# Exchange and decision rows as an INSERT or UPDATE writes them (``returning``), selected side by
# side (``written_columns``: the decision's columns prefixed ``d_``; the category slug is given).
_EXCHANGE_FIELDS = [f.name for f in fields(ExchangeRecord)]
_DECISION_FIELDS = [f.name for f in fields(DecisionRecord)]
EXCHANGE_RETURNED = [tables.exchanges.c[name] for name in _EXCHANGE_FIELDS if name != "category"]
DECISION_RETURNED = [tables.exchange_decisions.c[name] for name in _DECISION_FIELDS]


def written_columns(logged: CTE, decided: CTE, category: Expr) -> list[Expr]:
    """The exchange of CTE ``logged`` (its category slug ``category``) and the decision of CTE
    ``decided``, as ``written`` reads them."""
    exchange = [
        cast(category, Text).label("category") if name == "category" else logged.c[name]
        for name in _EXCHANGE_FIELDS
    ]
    return [*exchange, *(decided.c[name].label(f"d_{name}") for name in _DECISION_FIELDS)]


def written(row: Mapping[str, Any]) -> tuple[ExchangeRecord, DecisionRecord]:
    """The exchange and the decision of a row of ``written_columns``."""
    return (
        ExchangeRecord(**{name: row[name] for name in _EXCHANGE_FIELDS}),
        DecisionRecord(**{name: row[f"d_{name}"] for name in _DECISION_FIELDS}),
    )


# ---------------------------------------------------------------------------------------------
# What an exchange is checked against.
# ---------------------------------------------------------------------------------------------

_timebanks = tables.timebanks
_POLICY = compiled_sql(
    select(*(_timebanks.c[name] for name in POLICY_COLUMNS)).where(_timebanks.c.id == arg(1))
)
_PARTY = compiled_sql(party(arg(1), arg(2)))
_FIRST_TIMERS = (
    "SELECT p.id FROM unnest(CAST($1 AS bigint[])) AS p(id)"
    " WHERE NOT EXISTS (SELECT 1 FROM exchanges e"
    "   WHERE e.timebank_id = $2 AND e.state = 'approved'"
    "     AND (e.giver_id = p.id OR e.receiver_id = p.id))"
)


async def get_policy(conn: Connection, timebank_id: int) -> Policy:
    row = await fetch_one(conn, _POLICY, timebank_id)
    assert row is not None, "the caller's access names an existing timebank"
    return Policy(**row)


async def get_party(conn: Connection, timebank_id: int, participant_id: int) -> Party | None:
    row = await fetch_one(conn, _PARTY, participant_id, timebank_id)
    return Party(**row) if row is not None else None


async def first_timers(
    conn: Connection, timebank_id: int, participant_ids: Sequence[int]
) -> set[int]:
    """Those of ``participant_ids`` with no approved exchange yet."""
    rows = await fetch(conn, _FIRST_TIMERS, list(participant_ids), timebank_id)
    return {row["id"] for row in rows}


# ---------------------------------------------------------------------------------------------
# Exchanges and their decisions.
# ---------------------------------------------------------------------------------------------

_e = tables.exchanges.alias("e")
_c = tables.categories.alias("c")
_EXCHANGES = select(
    *(
        _c.c.slug.label("category") if name == "category" else _e.c[name]
        for name in _EXCHANGE_FIELDS
    )
).select_from(_e.join(_c, _c.c.id == _e.c.category_id))
EXCHANGES, EXCHANGES_ROW = _EXCHANGES, _e  # exchange rows (``e``) as ``ExchangeRecord`` reads them
_ONE_EXCHANGE = _EXCHANGES.where(_e.c.id == arg(1), _e.c.timebank_id == arg(2))
_EXCHANGE = compiled_sql(_ONE_EXCHANGE)
# A decision locks an exchange that is not a leg of a group session; a leg's decisions lock
# its session first (``exchanges.groups``), so that the two never wait for each other.
_EXCHANGE_LOCKED = compiled_sql(_ONE_EXCHANGE.where(_e.c.group_id.is_(None)).with_for_update(of=_e))


async def get_exchange(
    conn: Connection, timebank_id: int, exchange_id: int, *, lock: bool = False
) -> ExchangeRecord | None:
    """One exchange of this timebank; with ``lock``, its row stays locked (FOR UPDATE) until
    the transaction ends, so decisions on one exchange take turns, and a leg of a group session
    is not found (it is decided through its session, ``exchanges.groups``)."""
    row = await fetch_one(conn, _EXCHANGE_LOCKED if lock else _EXCHANGE, exchange_id, timebank_id)
    return ExchangeRecord(**row) if row is not None else None


# What a decision is inserted with, after its exchange's timebank and id.
DECISION_MADE = (
    "action",
    "from_state",
    "to_state",
    "actor_user_id",
    "actor_role",
    "on_behalf_of",
    "reason",
)


def actor_args(user_id: int, role: int, on_behalf_of: int) -> tuple[Expr, Expr, Expr]:
    """The parameters of a decision's actor (``$user_id``, ``$role``, ``$on_behalf_of``),
    typed."""
    return (
        cast(arg(user_id), BigInteger),
        cast(arg(role), Text),
        cast(arg(on_behalf_of), BigInteger),
    )


def decisions_cte(decisions: Select[Any]) -> CTE:
    """A CTE ``decided``: the decisions ``decisions`` selects (the exchange's timebank and id,
    then ``DECISION_MADE``), inserted and returned."""
    columns = ["timebank_id", "exchange_id", *DECISION_MADE]
    inserted = insert(tables.exchange_decisions).from_select(columns, decisions)
    return inserted.returning(*DECISION_RETURNED).cte("decided")


def _move_statement(transfer_id: Expr) -> str:
    """Move an exchange ($1 of timebank $2) from state $3 to $4 and record decision $5 by
    ($6, $7, $8) with reason $9; set review reason $10, the transfer ``transfer_id`` (an
    expression of $11) and the reversal $12; the category slug is $13."""
    e = tables.exchanges
    moved = {
        "state": arg(4),
        "updated_at": func.now(),
        "review_reason": func.coalesce(cast(arg(10), Text), e.c.review_reason),
        "transfer_id": func.coalesce(transfer_id, e.c.transfer_id),
        "reversal_transfer_id": func.coalesce(cast(arg(12), BigInteger), e.c.reversal_transfer_id),
    }
    logged = (
        update(e)
        .where(e.c.id == arg(1), e.c.timebank_id == arg(2), e.c.state == arg(3))
        .values(moved)
        .returning(*EXCHANGE_RETURNED)
        .cte("logged")
    )
    decision = select(
        logged.c.timebank_id,
        logged.c.id,
        cast(arg(5), Text),  # action
        cast(arg(3), Text),  # from state
        cast(arg(4), Text),  # to state
        *actor_args(6, 7, 8),
        cast(arg(9), Text),  # reason
    )
    decided = decisions_cte(decision)
    return compiled_sql(select(*written_columns(logged, decided, arg(13))).add_cte(logged, decided))


_MOVE = _move_statement(cast(arg(11), BigInteger))
# The same, posting the exchange's reservation ($11) once the exchange is found in its state.
_MOVE_POSTING = _move_statement(ledger.post_pending_id(arg(2), arg(11)))


async def move_exchange(
    conn: Connection,
    exchange: ExchangeRecord,
    *,
    action: str,
    to_state: ExchangeState,
    actor: Actor,
    reason: str | None = None,
    review_reason: str | None = None,
    transfer_id: int | None = None,
    reversal_transfer_id: int | None = None,
    post_pending: bool = False,
) -> tuple[ExchangeRecord, DecisionRecord] | None:
    """Move an exchange from the state it was read in to ``to_state`` and record the decision,
    in one statement; return both rows as written. None (nothing written) if it was no longer
    in that state. With ``post_pending``, the same statement posts the exchange's reservation
    and records the transfer."""
    row = await fetch_one(
        conn,
        _MOVE_POSTING if post_pending else _MOVE,
        exchange.id,
        exchange.timebank_id,
        exchange.state,
        to_state,
        action,
        actor.user_id,
        actor.role,
        actor.on_behalf_of,
        reason,
        review_reason,
        exchange.pending_transfer_id if post_pending else transfer_id,
        reversal_transfer_id,
        exchange.category,
    )
    return written(row) if row is not None else None


_DECISIONS = (
    "SELECT id, action, from_state, to_state, actor_user_id, actor_role, on_behalf_of,"
    " reason, decided_at FROM exchange_decisions"
    " WHERE exchange_id = $1 AND timebank_id = $2 ORDER BY id"
)


async def decisions_of(
    conn: Connection, timebank_id: int, exchange_id: int
) -> list[DecisionRecord]:
    rows = await fetch(conn, _DECISIONS, exchange_id, timebank_id)
    return [DecisionRecord(**row) for row in rows]


_LIST = compiled_sql(
    _EXCHANGES.where(
        _e.c.timebank_id == arg(1),
        unless_null(arg(2), BigInteger, _e.c.id > arg(2)),
        unless_null(arg(3), Text, _e.c.state == arg(3)),
        unless_null(arg(4), BigInteger, _e.c.giver_id == arg(4), _e.c.receiver_id == arg(4)),
        unless_null(arg(5), BigInteger, _e.c.giver_id == arg(5), _e.c.receiver_id == arg(5)),
        unless_null(arg(6), Date, _e.c.service_date >= arg(6)),
        unless_null(arg(7), Date, _e.c.service_date <= arg(7)),
    )
    .order_by(_e.c.id)
    .limit(arg(8))
)


async def list_exchanges(
    conn: Connection,
    timebank_id: int,
    filters: ExchangeFilters,
    *,
    party_of: int | None,
    limit: int,
) -> list[ExchangeRecord]:
    """Exchanges in ascending id order after ``filters.after_id``; ``party_of`` keeps only
    those a participant is party to."""
    rows = await fetch(
        conn,
        _LIST,
        timebank_id,
        filters.after_id,
        filters.state,
        party_of,
        filters.participant_id,
        filters.date_from,
        filters.date_to,
        limit,
    )
    return [ExchangeRecord(**row) for row in rows]
