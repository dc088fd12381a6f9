"""A participant's page for coordinators: their balance and limits, how to reach them and the
"Edit details" form, Deactivate or Reactivate, their opening balance and their leaving. The
forms are handled beside their rules: ``web.details`` (details, deactivation) and ``web.pot``
(opening balance, leaving)."""

from __future__ import annotations

from dataclasses import dataclass, field

from litestar import Response

from timebank.errors import Forbidden
from timebank.ledger.pot_desk import PotDesk
from timebank.participants.schemas import ParticipantPublic
from timebank.web.deps import LedgerReaderDep
from timebank.web.render import TimebankPage


@dataclass
class PersonField:
    """A person named on a form: as typed, the one chosen among matches, and the matches."""

    typed: str = ""
    chosen: str = ""
    choices: list[tuple[int, str]] = field(default_factory=list)


# The ways to reach someone, as the "Edit details" form offers them.
PREFERENCES = (
    ("email", "Email"),
    ("phone", "Phone call"),
    ("text", "Text message"),
    ("post", "Post"),
)
DETAIL_FIELDS = (
    "display_name",
    "email",
    "phone",
    "postal_address",
    "contact_preference",
    "external_id",
)


def details_of(person: ParticipantPublic) -> dict[str, str]:
    """A participant's details as the "Edit details" form shows them (blank: none)."""
    return {name: getattr(person, name) or "" for name in DETAIL_FIELDS}


@dataclass
class ParticipantForms:
    """The forms of a participant's page as typed, with what is wrong with them."""

    opening_sign: str = "credit"
    opening: str = ""
    leave_to: str = "pot"
    leave_who: PersonField = field(default_factory=PersonField)
    # The "Edit details" form as sent (empty: as stored).
    details: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


async def participant_page(
    page: TimebankPage,
    ledger_reader: LedgerReaderDep,
    pot_desk: PotDesk,
    participant_id: int,
    forms: ParticipantForms | None = None,
    *,
    status_code: int = 200,
    done: str | None = None,
) -> Response:
    access = page.access
    if not access.can_manage:
        raise Forbidden("a participant's page is for coordinators")
    person = await page.participants.show_participant(access, participant_id)
    balance = await ledger_reader.balance(access, participant_id)
    standing = await pot_desk.standing(access, participant_id)
    names = await page.names_of([standing.left_balance_to])
    return await page.render(
        "participant.html",
        status_code=status_code,
        person=person,
        balance=balance,
        standing=standing,
        names=names,
        forms=forms or ParticipantForms(),
        details=(forms.details if forms and forms.details else details_of(person)),
        preferences=PREFERENCES,
        own=access.participant_id == participant_id,
        done=done,
    )
