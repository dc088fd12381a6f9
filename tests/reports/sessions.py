"""Group sessions for the report tests, written as the schema accepts them (one place, so it
can be swapped for the exchanges service's ``log_group``; test_aggregates.py checks that the
service's sessions count the same): the session row and
its legs in one transaction, each leg an ordinary exchange with ``group_id`` set; approved
(every leg's transfer posted through the ledger's door and every leg moved to 'approved' in
one transaction) and reversed (every transfer reversed, every leg 'reversed') together, as
``exchange_groups_check`` demands."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.db.statements import Connection, execute, fetch, fetch_value
from timebank.ledger import repository as ledger
from timebank.ledger.schemas import TransferRequest

_CREATE_SESSION = """
    INSERT INTO exchange_groups (timebank_id, host_id, host_side, legs, minutes, service_date,
                                 category_id, on_behalf)
    SELECT $1, $2, $3, $4, $5, $6, c.id, false
      FROM categories c WHERE c.timebank_id = $1 AND c.slug = $7
    RETURNING id, category_id
"""

_LOG_LEGS = """
    INSERT INTO exchanges (timebank_id, giver_id, receiver_id, minutes, service_date,
                           category_id, state, logged_for, group_id)
    SELECT $1, u.giver_id, u.receiver_id, u.minutes, $5, $6, 'awaiting_approval', 'giver', $7
      FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) WITH ORDINALITY
           AS u(giver_id, receiver_id, minutes, n)
     ORDER BY u.n
    RETURNING id
"""

_LEGS = """
    SELECT e.id, e.minutes, e.transfer_id, g.id AS giver_account, r.id AS receiver_account
      FROM exchanges e
      JOIN accounts g ON g.participant_id = e.giver_id AND g.closed_at IS NULL
      JOIN accounts r ON r.participant_id = e.receiver_id AND r.closed_at IS NULL
     WHERE e.group_id = $1
     ORDER BY e.id
"""

_APPROVE_LEG = """
    UPDATE exchanges SET state = 'approved', transfer_id = $2, updated_at = now() WHERE id = $1
"""

_REVERSE_LEG = """
    UPDATE exchanges SET state = 'reversed', reversal_transfer_id = $2, updated_at = now()
     WHERE id = $1
"""


async def _approve(conn: Connection, timebank_id: int, session_id: int) -> None:
    legs = await fetch(conn, _LEGS, session_id)
    posted = await ledger.post_batch(
        conn,
        timebank_id,
        [
            TransferRequest(leg["receiver_account"], leg["giver_account"], leg["minutes"])
            for leg in legs
        ],
    )
    for leg, transfer in zip(legs, posted.transfers, strict=True):
        await execute(conn, _APPROVE_LEG, leg["id"], transfer.id)


async def log_session(
    engine: AsyncEngine,
    timebank_id: int,
    *,
    host_id: int,
    attendees: Sequence[int],
    minutes: Sequence[int],
    service_date: date,
    category: str,
    host_side: str = "giver",
    approved: bool = True,
) -> tuple[int, list[int]]:
    """A group session with one leg per attendee (``minutes`` each), the host giving
    (``host_side`` 'giver') or receiving; approved at once or left awaiting approval. Returns
    the session's id and its legs' ids."""
    givers = [host_id] * len(attendees) if host_side == "giver" else list(attendees)
    receivers = list(attendees) if host_side == "giver" else [host_id] * len(attendees)
    async with engine.begin() as conn:
        rows = await fetch(
            conn,
            _CREATE_SESSION,
            timebank_id,
            host_id,
            host_side,
            len(attendees),
            sum(minutes),
            service_date,
            category,
        )
        if not rows:
            raise LookupError(f"no category {category!r} in timebank {timebank_id}")
        session_id, category_id = rows[0]["id"], rows[0]["category_id"]
        legs = await fetch(
            conn,
            _LOG_LEGS,
            timebank_id,
            givers,
            receivers,
            list(minutes),
            service_date,
            category_id,
            session_id,
        )
        if approved:
            await _approve(conn, timebank_id, session_id)
    return session_id, [leg["id"] for leg in legs]


async def approve_session(engine: AsyncEngine, timebank_id: int, session_id: int) -> None:
    """Every leg of a session awaiting approval, approved together."""
    async with engine.begin() as conn:
        await _approve(conn, timebank_id, session_id)


async def reverse_session(engine: AsyncEngine, timebank_id: int, session_id: int) -> None:
    """Every leg of an approved session, reversed together."""
    async with engine.begin() as conn:
        for leg in await fetch(conn, _LEGS, session_id):
            reversal = await ledger.reverse(
                conn, timebank_id, leg["transfer_id"], "the session did not take place"
            )
            await execute(conn, _REVERSE_LEG, leg["id"], reversal.transfer.id)


async def session_state(engine: AsyncEngine, session_id: int) -> str:
    async with engine.connect() as conn:
        return await fetch_value(
            conn, "SELECT min(state) FROM exchanges WHERE group_id = $1", session_id
        )
