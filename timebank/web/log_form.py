"""The "log hours" form: what was typed, read into the API's ``ExchangeCreate``, with every
fault kept beside the field it belongs to so the form comes back as it was sent.

A member names one other person and says whether they gave or received; a coordinator (logging
on behalf) names both the giver and the receiver."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from litestar.datastructures import FormMultiDict
from pydantic import ValidationError

from timebank.auth.schemas import TimebankAccess
from timebank.errors import TimebankError
from timebank.exchanges.policy import DEACTIVATED
from timebank.exchanges.schemas import ExchangeCreate
from timebank.hours import DurationError, parse_duration
from timebank.participants.service import Participants
from timebank.web.forms import KeyedForm, new_key, sent_text
from timebank.web.people import find_by_name
from timebank.web.render import sentence

DEACTIVATED_ON_PAGE = (
    "They are deactivated in this timebank: nothing new is logged with them until a"
    " coordinator reactivates them."
)

MAX_NOTE = 500

_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only (str.isdigit also takes "²")


@dataclass
class LogForm(KeyedForm):
    """The values as typed (strings), the one-time key, and what is wrong with them."""

    who: str = ""
    who_id: str = ""
    giver: str = ""
    giver_id: str = ""
    receiver: str = ""
    receiver_id: str = ""
    direction: str = "gave"
    choices: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    @classmethod
    def blank(cls, today: date) -> LogForm:
        return cls(key=new_key(), service_date=today.isoformat())

    @classmethod
    def from_form(cls, form: FormMultiDict) -> LogForm:
        return cls(
            **KeyedForm.sent(form),
            who=sent_text(form, "who"),
            who_id=sent_text(form, "who_id"),
            giver=sent_text(form, "giver"),
            giver_id=sent_text(form, "giver_id"),
            receiver=sent_text(form, "receiver"),
            receiver_id=sent_text(form, "receiver_id"),
            direction=sent_text(form, "direction") or "gave",
        )


def _int(value: str) -> int | None:
    return int(value) if _ID.fullmatch(value) else None


async def _person(
    form: LogForm,
    participants: Participants,
    access: TimebankAccess,
    name: str,
    typed: str,
    chosen: str,
    *,
    exclude: int | None,
) -> int | None:
    if not typed.strip():
        form.fail(name, "Say who: type a name.")
        return None
    match = await find_by_name(participants, access, typed, chosen_id=_int(chosen), exclude=exclude)
    if match.participant_id is None:
        if match.choices:
            form.choices[name] = match.choices
            form.fail(name, f"Several people match “{typed.strip()}”: choose one.")
        else:
            form.fail(name, f"Nobody called “{typed.strip()}” in this timebank.")
    return match.participant_id


async def read(
    form: LogForm, participants: Participants, access: TimebankAccess, *, on_behalf: bool
) -> ExchangeCreate | None:
    """The exchange the form asks for, or None with ``form.errors`` saying why not."""
    try:
        form.minutes = parse_duration(form.duration)
    except DurationError as error:
        form.fail("duration", sentence(str(error)))
    try:
        service_date = date.fromisoformat(form.service_date)
    except ValueError:
        form.fail("service_date", "Choose the day, e.g. 2026-11-26.")
    if not form.category:
        form.fail("category", "Choose what kind of help it was.")
    if len(form.description) > MAX_NOTE:
        form.fail("description", f"Keep the note under {MAX_NOTE} characters.")
    me = access.party_id
    if on_behalf:
        giver = await _person(
            form, participants, access, "giver", form.giver, form.giver_id, exclude=None
        )
        receiver = await _person(
            form, participants, access, "receiver", form.receiver, form.receiver_id, exclude=None
        )
    else:
        if form.direction not in ("gave", "received"):
            form.fail("direction", "Say whether you gave or received the help.")
        other = await _person(form, participants, access, "who", form.who, form.who_id, exclude=me)
        giver, receiver = (me, other) if form.direction == "gave" else (other, me)
    if form.errors or giver is None or receiver is None or form.minutes is None:
        return None
    try:
        return ExchangeCreate(
            giver_id=giver,
            receiver_id=receiver,
            minutes=form.minutes,
            service_date=service_date,
            category=form.category,
            description=form.description.strip(),
        )
    except ValidationError as error:
        for problem in error.errors():
            where = str(problem["loc"][0]) if problem["loc"] else ""
            form.fail(FIELD_OF.get(where, "form"), problem["msg"])
        return None


# The API's field names, as the fields of this form.
FIELD_OF = {
    "minutes": "duration",
    "service_date": "service_date",
    "category": "category",
    "description": "description",
    "logged_for": "form",
}


LIMIT_REACHED = (
    "That is more time than the balance limits allow just now (time still waiting for "
    "approval counts too). Try less, or ask a coordinator."
)


def explain(form: LogForm, error: TimebankError, *, on_behalf: bool) -> None:
    """Put a refusal of the service beside the field it is about, in its own words where
    they are plain (a single fault), or field by field."""
    if error.kind == "limit-exceeded":
        form.fail("duration", f"{LIMIT_REACHED} ({error.detail})")
        return
    problems: list[dict[str, Any]] = error.extra.get("errors") or []
    people = {"giver_id": "giver", "receiver_id": "receiver"}
    for problem in problems:
        key = str(problem.get("key", ""))
        if key in people:
            name = people[key] if on_behalf else "who"
        else:
            name = FIELD_OF.get(key, "form")
        if problem.get("message") == DEACTIVATED:
            form.fail(name, DEACTIVATED_ON_PAGE)
            continue
        plain = len(problems) == 1 and not error.detail.startswith("please check")
        form.fail(name, sentence(error.detail if plain else str(problem.get("message", ""))))
    if not problems:
        form.fail("form", sentence(error.detail))
