"""Finding people by name among one's own timebank, through the participants service (which
decides who may see whom: members a directory, coordinators everyone)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from timebank.auth.schemas import TimebankAccess
from timebank.exchanges.schemas import ExchangePublic
from timebank.participants.service import MAX_PAGE, Participants

# The most people a page lists; in a timebank larger than this, people are found by name.
MAX_PEOPLE_LISTED = 2000


@dataclass(frozen=True)
class Match:
    """How a typed name resolved: one participant, or several to choose from, or none."""

    participant_id: int | None
    choices: list[tuple[int, str]]


async def names(
    participants: Participants, access: TimebankAccess, *, active_only: bool = False
) -> dict[int, str]:
    """Participant id → display name, for the people the caller may see (``active_only``:
    leaving out those deactivated, as the forms' pickers do)."""
    found: dict[int, str] = {}
    after_id = None
    while len(found) < MAX_PEOPLE_LISTED:
        listed = await participants.list_participants(
            access, after_id=after_id, limit=MAX_PAGE, active_only=active_only
        )
        found.update((entry.id, entry.display_name) for entry in listed.items)
        if listed.next_after_id is None:
            break
        after_id = listed.next_after_id
    return found


async def find_by_name(
    participants: Participants,
    access: TimebankAccess,
    typed: str,
    *,
    chosen_id: int | None = None,
    exclude: int | None = None,
) -> Match:
    """The participant a typed name means: a choice made from a list of matches wins; else
    an exact name (ignoring case), else the only partial match."""
    name = " ".join(typed.split())
    if not name:
        return Match(None, [])
    listed = await participants.list_participants(access, q=name, limit=20)
    candidates = [(e.id, e.display_name) for e in listed.items if e.id != exclude]
    if chosen_id is not None and any(pid == chosen_id for pid, _ in candidates):
        return Match(chosen_id, [])
    exact = [c for c in candidates if c[1].casefold() == name.casefold()]
    if len(exact) == 1:
        return Match(exact[0][0], [])
    if len(candidates) == 1:
        return Match(candidates[0][0], [])
    return Match(None, exact or candidates)


def parties_of(exchanges: Iterable[ExchangePublic]) -> set[int | None]:
    """The participants a list of these exchanges names: their givers and receivers."""
    return {side for exchange in exchanges for side in (exchange.giver_id, exchange.receiver_id)}


async def category_names(participants: Participants, access: TimebankAccess) -> dict[str, str]:
    """Category slug → the name people read."""
    return {category.slug: category.name for category in await participants.list_categories(access)}
