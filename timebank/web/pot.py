"""Giving hours (a member to another or to the community pot; a coordinator granting from the
pot), the community pot's page, and on a participant's page (``web.participant``) their
opening balance and their leaving. Every rule is the pot desk's (``timebank.ledger.pot_desk``):
a form sent still goes through it, and its refusals come back beside the field they are
about."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Annotated, TypeAlias

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from pydantic import ValidationError

from timebank.auth.schemas import TimebankAccess
from timebank.errors import Forbidden, TimebankError
from timebank.hours import DurationError, parse_duration
from timebank.ledger.pot_desk import PotDesk
from timebank.ledger.pot_schemas import (
    MAX_NOTE,
    GiftCreate,
    LeaveRequest,
    OpeningBalanceUpdate,
)
from timebank.openapi import ParticipantId
from timebank.participants.service import Participants
from timebank.web.deps import LedgerReaderDep, PageDep
from timebank.web.participant import ParticipantForms, PersonField, participant_page
from timebank.web.people import find_by_name, names
from timebank.web.render import TimebankPage, redirect, sentence

PotDeskDep: TypeAlias = NamedDependency[PotDesk]
RECENT_MOVEMENTS = 50  # the pot's movements its page shows, newest first
_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only (str.isdigit also takes "²")

# What each kind of transfer is called on the pot's page.
KIND_LABELS = {
    "gift": "gift",
    "grant": "grant",
    "opening": "opening balance",
    "leaving": "balance of someone who left",
    "exchange": "exchange",
    "reversal": "reversal",
    "adjustment": "adjustment",
}


def _text(form: FormMultiDict, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _int(value: str) -> int | None:
    return int(value) if _ID.fullmatch(value) else None


async def _resolve(
    participants: Participants,
    access: TimebankAccess,
    person: PersonField,
    errors: dict[str, str],
    name: str,
    *,
    exclude: int | None,
) -> int | None:
    """The participant ``person`` names, or None with the reason in ``errors[name]``."""
    typed = person.typed.strip()
    if not typed:
        errors[name] = "Say who: type a name."
        return None
    match = await find_by_name(
        participants, access, typed, chosen_id=_int(person.chosen), exclude=exclude
    )
    if match.participant_id is None:
        person.choices = match.choices
        errors[name] = (
            f"Several people match “{typed}”: choose one."
            if match.choices
            else f"Nobody called “{typed}” in this timebank."
        )
    return match.participant_id


def _duration(text: str, errors: dict[str, str], name: str = "duration") -> int | None:
    try:
        return parse_duration(text)
    except DurationError as error:
        errors[name] = sentence(str(error))
        return None


def _explain(error: TimebankError, errors: dict[str, str], fields: dict[str, str]) -> None:
    """A refusal of the pot desk beside the form field it is about (``fields``: the API's
    field → the form's), else above the form."""
    if error.kind == "limit-exceeded":
        errors["duration"] = sentence(error.detail)
        return
    problems = error.extra.get("errors") or []
    keys = [str(problem.get("key", "")) for problem in problems]
    where = next((fields[key] for key in keys if key in fields), "form")
    errors[where] = sentence(error.detail)


# --- Giving hours ------------------------------------------------------------------------------


@dataclass
class GiveForm:
    """The "give hours" form as typed: to a person or the pot, how long, a note; in grant mode
    (a coordinator, from the pot) the note is the reason, and it goes to a person."""

    key: str
    grant: bool = False
    to: str = "person"
    who: PersonField = field(default_factory=PersonField)
    duration: str = ""
    note: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, *, grant: bool) -> GiveForm:
        return cls(key=str(uuid.uuid4()), grant=grant)

    @classmethod
    def sent(cls, form: FormMultiDict, *, grant: bool) -> GiveForm:
        return cls(
            key=_text(form, "key")[:255] or str(uuid.uuid4()),
            grant=grant,
            to="person" if grant else (_text(form, "to") or "person"),
            who=PersonField(_text(form, "who"), _text(form, "who_id")),
            duration=_text(form, "duration"),
            note=_text(form, "note"),
        )


def _grant_mode(access: TimebankAccess, asked: bool) -> bool:
    """Grant from the pot: a coordinator who asks for it, or one with no account to give from."""
    if access.party_id is None and not access.can_manage:
        raise Forbidden("giving hours is for members, from their own account")
    return access.can_manage and (asked or access.party_id is None)


async def _read_gift(form: GiveForm, page: TimebankPage) -> GiftCreate | None:
    access, errors = page.access, form.errors
    minutes = _duration(form.duration, errors)
    if len(form.note) > MAX_NOTE:
        errors["note"] = f"Keep the note under {MAX_NOTE} characters."
    if form.grant and not form.note.strip():
        errors["note"] = "Say why the pot grants these hours."
    to_id: int | None = None
    if form.to == "person":
        exclude = None if form.grant else access.party_id
        to_id = await _resolve(page.participants, access, form.who, errors, "who", exclude=exclude)
    elif form.to != "pot":
        errors["to"] = "Choose a person or the community pot."
    if errors or minutes is None:
        return None
    try:
        return GiftCreate(
            from_id=None if form.grant else access.party_id,
            to_id=to_id,
            minutes=minutes,
            note=form.note,
        )
    except ValidationError as error:
        for problem in error.errors():
            where = str(problem["loc"][0]) if problem["loc"] else "form"
            errors.setdefault(
                {"minutes": "duration", "note": "note"}.get(where, "form"), problem["msg"]
            )
        return None


async def _give_page(page: TimebankPage, form: GiveForm, status_code: int = 200) -> Response:
    access = page.access
    people = await names(page.participants, access, active_only=True)
    if not form.grant:
        people.pop(access.party_id or 0, None)
    return await page.render(
        "give.html",
        status_code=status_code,
        form=form,
        people=sorted(set(people.values()), key=str.casefold),
    )


# --- A participant's opening balance and leaving ------------------------------------------------


class PotPages(Controller):
    path = "/t/{slug:str}"

    @get("/give")
    async def give_form(
        self, page: PageDep, grant: Annotated[bool, QueryParameter()] = False
    ) -> Response:
        """Give hours to someone or to the community pot (a coordinator: grant them from the
        pot), with a one-time key so that it is given once however often it is sent."""
        form = GiveForm.blank(grant=_grant_mode(page.access, grant))
        return await _give_page(page, form)

    @post("/give")
    async def give(self, page: PageDep, pot_desk: PotDeskDep) -> Response:
        """Give (or grant) what the form says, at once; a resend under the same key gives
        nothing more."""
        access = page.access
        sent = await page.request.form()
        form = GiveForm.sent(sent, grant=_grant_mode(access, _text(sent, "mode") == "grant"))
        data = await _read_gift(form, page)
        status = 422
        if data is not None:
            try:
                await pot_desk.gift(access, data, form.key)
            except Forbidden as error:  # e.g. a coordinator granting to their own account
                form.errors["who"] = sentence(error.detail)
                status = error.status_code
            except TimebankError as error:
                if error.status_code == 401:
                    raise
                _explain(error, form.errors, {"to_id": "who", "note": "note"})
                form.key = str(uuid.uuid4())  # what was sent was refused: a fresh try
                status = error.status_code
            else:
                if form.grant:
                    return redirect(f"/t/{access.timebank_slug}/pot", granted=1)
                return redirect(f"/t/{access.timebank_slug}", given=1)
        return await _give_page(page, form, status)

    @get("/pot")
    async def pot(
        self,
        page: PageDep,
        pot_desk: PotDeskDep,
        granted: Annotated[bool, QueryParameter()] = False,
    ) -> Response:
        """The community pot: its balance and its recent movements (coordinators)."""
        seen = await pot_desk.pot(page.access, limit=RECENT_MOVEMENTS)
        listed = [m.participant_id for m in seen.movements]
        return await page.render(
            "pot.html",
            pot=seen,
            names=await page.names_of(listed),
            reach=await page.reach_of(listed),
            kinds=KIND_LABELS,
            granted=granted,
        )

    @get("/participants/{participant_id:int}")
    async def participant(
        self,
        page: PageDep,
        ledger_reader: LedgerReaderDep,
        pot_desk: PotDeskDep,
        participant_id: ParticipantId,
        done: Annotated[str | None, QueryParameter(max_length=20)] = None,
    ) -> Response:
        """One participant for coordinators: their balance, opening balance and leaving."""
        shown = (
            done if done in ("opening", "left", "details", "deactivated", "reactivated") else None
        )
        return await participant_page(page, ledger_reader, pot_desk, participant_id, done=shown)

    @post("/participants/{participant_id:int}/opening-balance")
    async def set_opening(
        self,
        page: PageDep,
        ledger_reader: LedgerReaderDep,
        pot_desk: PotDeskDep,
        participant_id: ParticipantId,
    ) -> Response:
        """Set the participant's opening balance against the pot, once (coordinators)."""
        access = page.access
        if not access.can_manage:
            raise Forbidden("only a coordinator may set an opening balance")
        sent = await page.request.form()
        forms = ParticipantForms(
            opening_sign=_text(sent, "opening_sign") or "credit", opening=_text(sent, "opening")
        )
        if forms.opening.strip() in ("0", "0:00"):
            minutes: int | None = 0
        else:
            minutes = _duration(forms.opening, forms.errors, "opening")
        if forms.opening_sign not in ("credit", "debt"):
            forms.errors["opening_sign"] = "Say whether they start in credit or in debt."
        if minutes is not None and not forms.errors:
            signed = minutes if forms.opening_sign == "credit" else -minutes
            try:
                await pot_desk.set_opening(
                    access, participant_id, OpeningBalanceUpdate(minutes=signed)
                )
            except TimebankError as error:
                if error.status_code in (401, 403, 404):
                    raise
                forms.errors["opening"] = sentence(
                    "an opening balance is set once, and this one is set already"
                    if error.kind == "invalid-transition"
                    else error.detail
                )
                return await participant_page(
                    page,
                    ledger_reader,
                    pot_desk,
                    participant_id,
                    forms,
                    status_code=error.status_code,
                )
            return redirect(
                f"/t/{access.timebank_slug}/participants/{participant_id}", done="opening"
            )
        return await participant_page(
            page, ledger_reader, pot_desk, participant_id, forms, status_code=422
        )

    @post("/participants/{participant_id:int}/leave")
    async def leave(
        self,
        page: PageDep,
        ledger_reader: LedgerReaderDep,
        pot_desk: PotDeskDep,
        participant_id: ParticipantId,
    ) -> Response:
        """Record that the participant leaves, their balance to the pot or to a member
        (coordinators)."""
        access = page.access
        if not access.can_manage:
            raise Forbidden("only a coordinator records a leaving on this page")
        sent = await page.request.form()
        forms = ParticipantForms(
            leave_to=_text(sent, "leave_to") or "pot",
            leave_who=PersonField(_text(sent, "leave_who"), _text(sent, "leave_who_id")),
        )
        balance_to: int | None = None
        if forms.leave_to == "person":
            balance_to = await _resolve(
                page.participants,
                access,
                forms.leave_who,
                forms.errors,
                "leave_who",
                exclude=participant_id,
            )
        elif forms.leave_to != "pot":
            forms.errors["leave_to"] = "Choose where their balance goes."
        if not forms.errors:
            try:
                await pot_desk.leave(access, participant_id, LeaveRequest(balance_to=balance_to))
            except TimebankError as error:
                to_me = balance_to is not None and balance_to == access.participant_id
                if (error.status_code in (401, 403) and not to_me) or (
                    error.kind == "not-found" and balance_to is None
                ):
                    raise
                _explain(error, forms.errors, {"balance_to": "leave_who"})
                if to_me:  # the form names its sender: say so beside the name
                    forms.errors["leave_who"] = forms.errors.pop("form", error.detail)
                if "form" in forms.errors:
                    forms.errors["leave_to"] = forms.errors.pop("form")
                return await participant_page(
                    page,
                    ledger_reader,
                    pot_desk,
                    participant_id,
                    forms,
                    status_code=error.status_code,
                )
            return redirect(f"/t/{access.timebank_slug}/participants/{participant_id}", done="left")
        return await participant_page(
            page, ledger_reader, pot_desk, participant_id, forms, status_code=422
        )
