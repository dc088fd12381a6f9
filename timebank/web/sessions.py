"""The "group session" page: a host, the people who came (ticked in a list), one duration, and
the session is recorded as one, once however often the form is sent. Who may log it, and
everything the session must satisfy, is the exchanges service's: the page reads the form
into the API's ``GroupSessionCreate`` and shows each refusal beside its field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict
from pydantic import ValidationError

from timebank.errors import (
    Conflict,
    Forbidden,
    TimebankError,
    ValidationFailed,
)
from timebank.exchanges.policy import DEACTIVATED
from timebank.exchanges.schemas import MAX_LEGS, GroupSessionCreate
from timebank.hours import DurationError, parse_duration
from timebank.web.deps import ExchangesDep, PageDep
from timebank.web.forms import KeyedForm, new_key, send_once, sent_text
from timebank.web.people import names
from timebank.web.render import TimebankPage, redirect, sentence

_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only

# Where a fault the service names (a field of the API's body) is shown on the form.
_FIELD_OF = {
    "legs": "attendees",
    "service_date": "service_date",
    "category": "category",
    "description": "description",
}


@dataclass
class SessionForm(KeyedForm):
    """The values as sent (strings), the one-time key, and what is wrong with them."""

    host: str = ""
    side: str = "gives"
    attendees: list[str] = field(default_factory=list)

    @classmethod
    def blank(cls, today: date) -> SessionForm:
        return cls(key=new_key(), service_date=today.isoformat())

    @classmethod
    def from_form(cls, form: FormMultiDict) -> SessionForm:
        ticked = [v for v in form.getall("attendee", []) if isinstance(v, str)]
        return cls(
            **KeyedForm.sent(form),
            host=sent_text(form, "host"),
            side="receives" if sent_text(form, "side") == "receives" else "gives",
            attendees=ticked[: MAX_LEGS + 1],
        )


def _read(form: SessionForm, host: int | None) -> GroupSessionCreate | None:
    """The API's body for what the form says, or None with the faults kept on the form."""
    if host is None:
        if _ID.fullmatch(form.host):
            host = int(form.host)
        else:
            form.fail("host", "Choose who ran the session.")
    people = sorted({int(a) for a in form.attendees if _ID.fullmatch(a)})
    if not people:
        form.fail("attendees", "Tick everyone who came.")
    elif len(people) > MAX_LEGS:
        form.fail("attendees", f"A session has at most {MAX_LEGS} people besides the host.")
    minutes = None
    try:
        minutes = form.minutes = parse_duration(form.duration)
    except DurationError as error:
        form.fail("duration", sentence(str(error)))
    if form.errors or host is None or minutes is None:
        return None
    legs = [
        {"giver_id": host, "receiver_id": p, "minutes": minutes}
        if form.side == "gives"
        else {"giver_id": p, "receiver_id": host, "minutes": minutes}
        for p in people
    ]
    try:
        return GroupSessionCreate.model_validate(
            {
                "legs": legs,
                "host_id": host,
                "service_date": form.service_date,
                "category": form.category,
                "description": form.description.strip(),
            }
        )
    except ValidationError as error:
        for problem in error.errors():
            where = str(problem["loc"][0]) if problem["loc"] else "form"
            form.fail(_FIELD_OF.get(where, "form"), _message(where, problem["msg"]))
        return None


def _message(where: str, message: str) -> str:
    return {
        "service_date": "Give the day of the session, like 2024-05-31.",
        "category": "Choose what kind of help it was.",
        "description": "The note is too long.",
    }.get(where, sentence(message))


def _explain(form: SessionForm, error: TimebankError, people: dict[int, str]) -> None:
    """Put a refusal of the service beside the field it names, naming the person at fault."""
    who = error.extra.get("participant_id")
    name = people.get(who, "Someone") if isinstance(who, int) else None
    if name is not None and error.extra.get("limit") is not None:
        where = "floor" if error.extra["limit"] == "floor" else "ceiling"
        message = (
            f"{name} would go past their {where}: nothing was recorded. Untick them, or ask a"
            " coordinator about their limits."
        )
        form.fail("host" if who == _host_of(form) else "attendees", message)
        return
    if name is not None and _deactivated(error):
        form.fail(
            "host" if who == _host_of(form) else "attendees",
            f"{name} is deactivated: untick them, or ask a coordinator to reactivate them.",
        )
        return
    if name is not None:
        form.fail("attendees", f"{name} has left the timebank: untick them.")
        return
    for problem in error.extra.get("errors") or []:
        where = str(problem.get("key", "")).split(".")[0]
        form.fail(_FIELD_OF.get(where, "form"), sentence(str(problem.get("message", ""))))
    if not form.errors:
        form.fail("form", sentence(error.detail))


def _deactivated(error: TimebankError) -> bool:
    """Whether the service refused someone for being deactivated."""
    return any(p.get("message") == DEACTIVATED for p in error.extra.get("errors") or [])


def _host_of(form: SessionForm) -> int | None:
    return int(form.host) if _ID.fullmatch(form.host) else None


class SessionPages(Controller):
    path = "/t/{slug:str}"

    @get("/sessions/new")
    async def session_form(self, page: PageDep) -> Response:
        """The group session form, with a one-time key."""
        _require_logger(page)
        return await _form(page, SessionForm.blank(date.today()))

    @post("/sessions/new")
    async def log_session(self, page: PageDep, exchanges: ExchangesDep) -> Response:
        """Record the session the form describes, once."""
        access = page.access
        form = SessionForm.from_form(await page.request.form())
        host = None if access.can_manage else access.party_id
        if host is not None:
            form.host = str(host)
        data = _read(form, host)
        if data is None:
            return await _form(page, form, status_code=422)
        people = await names(page.participants, access)
        logged, status = await send_once(
            form,
            lambda: exchanges.log_group(access, data, form.key),
            lambda error: _explain(form, error, people),
            (ValidationFailed, Conflict, Forbidden),
        )
        if logged is None:
            return await _form(page, form, status_code=status)
        return redirect(f"/t/{access.timebank_slug}/exchanges/{logged.session.id}", logged=1)


def _require_logger(page: TimebankPage) -> None:
    access = page.access
    if not access.can_manage and access.party_id is None:
        raise Forbidden("group sessions are logged by their host or a coordinator")


async def _form(page: TimebankPage, form: SessionForm, *, status_code: int = 200) -> Response:
    access = page.access
    people = await names(page.participants, access, active_only=True)
    host = None if access.can_manage else access.party_id
    return await page.render(
        "session_form.html",
        status_code=status_code,
        form=form,
        choose_host=host is None,
        people=sorted(people.items(), key=lambda item: (item[1].casefold(), item[0])),
        host=host,
        categories=await page.participants.list_categories(access),
        today=date.today().isoformat(),
        max_legs=MAX_LEGS,
    )
