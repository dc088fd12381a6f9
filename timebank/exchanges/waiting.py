"""What waits for someone: how many exchanges the caller is asked to confirm or dispute,
counted by one query of its own, so that a page need not list their exchanges to say so."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.auth.schemas import TimebankAccess
from timebank.db.statements import fetch_value
from timebank.exchanges import policy

# ``policy.waits_for`` in SQL: the caller is the counterparty (the one who did not log it) of
# an exchange in a state a confirmation starts from. $1 timebank, $2 states, $3 the caller.
_COUNT_WAITING = (
    "SELECT count(*) FROM exchanges"
    " WHERE timebank_id = $1 AND state = ANY($2::text[])"
    "   AND ((logged_for = 'giver' AND receiver_id = $3)"
    "     OR (logged_for = 'receiver' AND giver_id = $3))"
)
_CONFIRMABLE = sorted(policy.TRANSITIONS["confirm"].from_states)


async def count_waiting(engine: AsyncEngine, access: TimebankAccess) -> int:
    """How many exchanges of the caller's timebank ``policy.waits_for`` the caller: none for
    someone who takes no part in exchanges."""
    if access.party_id is None:
        return 0
    async with engine.connect() as conn:
        found = await fetch_value(
            conn, _COUNT_WAITING, access.timebank_id, _CONFIRMABLE, access.party_id
        )
    return int(found)
