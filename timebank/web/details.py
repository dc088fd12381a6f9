"""A participant's details on their page, for coordinators: the "Edit details" form (their
name and how to reach them) and the Deactivate and Reactivate buttons. The participants
service decides who may do it and what is valid; its refusals come back beside the field."""

from __future__ import annotations

from litestar import Controller, Response, post
from pydantic import ValidationError

from timebank.errors import Forbidden, TimebankError
from timebank.openapi import ParticipantId
from timebank.participants.schemas import ParticipantUpdate
from timebank.web.deps import LedgerReaderDep, PageDep
from timebank.web.participant import (
    DETAIL_FIELDS,
    ParticipantForms,
    details_of,
    participant_page,
)
from timebank.web.pot import PotDeskDep
from timebank.web.render import redirect, sentence

# What a refused field is told on the page, in place of the validator's words.
_PLAIN = {
    "display_name": "Give a name.",
    "email": "That does not look like an email address (or leave it empty).",
    "phone": "Use digits, spaces, brackets and hyphens, like 01234 567890 (or leave it empty).",
    "postal_address": "Up to 500 characters, without control characters.",
    "contact_preference": "Choose email, phone call, text message or post.",
    "external_id": "Up to 100 characters on one line, without control characters.",
}


class DetailsPages(Controller):
    path = "/t/{slug:str}/participants/{participant_id:int}"

    @post("/details")
    async def edit_details(
        self,
        page: PageDep,
        ledger_reader: LedgerReaderDep,
        pot_desk: PotDeskDep,
        participant_id: ParticipantId,
    ) -> Response:
        """Change a participant's name and how to reach them (coordinators). Only what was
        changed on the form is sent; sending the same form twice changes nothing more."""
        access = page.access
        if not access.can_manage:
            raise Forbidden("only a coordinator may edit a participant's details")
        sent = await page.request.form()
        typed = {
            name: str(sent.get(name, "")).replace("\r\n", "\n").strip() for name in DETAIL_FIELDS
        }
        forms = ParticipantForms(details=typed)
        person = await page.participants.show_participant(access, participant_id)
        stored = details_of(person)
        changed = {
            name: (value or None) if name != "display_name" else value
            for name, value in typed.items()
            if value != stored[name]
        }
        if changed:
            try:
                data = ParticipantUpdate.model_validate(changed)
            except ValidationError as error:
                for problem in error.errors():
                    where = str(problem["loc"][0]) if problem["loc"] else "form"
                    forms.errors.setdefault(where, _PLAIN.get(where, sentence(problem["msg"])))
            else:
                try:
                    await page.participants.update_details(access, participant_id, data)
                except TimebankError as error:
                    if error.status_code in (401, 403, 404):
                        raise
                    forms.errors[_field_of(error)] = sentence(error.detail)
                    return await participant_page(
                        page,
                        ledger_reader,
                        pot_desk,
                        participant_id,
                        forms,
                        status_code=error.status_code,
                    )
            if forms.errors:
                return await participant_page(
                    page, ledger_reader, pot_desk, participant_id, forms, status_code=422
                )
        return redirect(f"/t/{access.timebank_slug}/participants/{participant_id}", done="details")

    @post("/deactivate")
    async def deactivate(self, page: PageDep, participant_id: ParticipantId) -> Response:
        """Deactivate the participant (coordinators; never their own)."""
        await page.participants.deactivate(page.access, participant_id)
        return redirect(
            f"/t/{page.access.timebank_slug}/participants/{participant_id}", done="deactivated"
        )

    @post("/reactivate")
    async def reactivate(self, page: PageDep, participant_id: ParticipantId) -> Response:
        """Reactivate the participant (coordinators; never their own)."""
        await page.participants.reactivate(page.access, participant_id)
        return redirect(
            f"/t/{page.access.timebank_slug}/participants/{participant_id}", done="reactivated"
        )


def _field_of(error: TimebankError) -> str:
    """The form field a refusal of the service is about."""
    named = error.extra.get("field")
    if isinstance(named, str) and named in DETAIL_FIELDS:
        return named
    for problem in error.extra.get("errors") or []:
        key = str(problem.get("key", ""))
        if key in DETAIL_FIELDS:
            return key
    return "details"
