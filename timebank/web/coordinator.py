"""Coordinator pages: the approval queue (oldest first, with the rule that sent each exchange
there), approving or rejecting many at once, the participants with their balances, and
inviting someone. The services refuse anyone who is not a coordinator here (or an admin)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from pydantic import ValidationError

from timebank.auth.schemas import TimebankAccess
from timebank.deps import SettingsDep
from timebank.errors import Conflict, Forbidden, TimebankError, ValidationFailed
from timebank.exchanges import policy
from timebank.exchanges.schemas import (
    ExchangeFilters,
    ExchangePublic,
    ExchangeState,
    GroupSessionDetail,
)
from timebank.exchanges.service import Exchanges
from timebank.participants.schemas import ParticipantCreate
from timebank.settings import Settings
from timebank.web.deps import ExchangesDep, PageDep
from timebank.web.exchanges import all_exchanges
from timebank.web.participant import PREFERENCES
from timebank.web.people import MAX_PEOPLE_LISTED, category_names, parties_of
from timebank.web.render import TimebankPage, sentence

QUEUE_STATES: tuple[ExchangeState, ...] = ("awaiting_approval", "disputed")
KINDS = (("member", "Member"), ("professional", "Professional"), ("organisation", "Organisation"))
EVERY_EXCHANGE = "the timebank asks a coordinator to approve every exchange"
# How to reach someone, beside the email, as the form to add them takes it.
CONTACT_FIELDS = ("phone", "postal_address", "contact_preference")

_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only (str.isdigit also takes "²")


async def _queue(
    exchanges: Exchanges, access: TimebankAccess
) -> list[tuple[ExchangePublic, GroupSessionDetail | None]]:
    """Exchanges and group sessions waiting for a coordinator that this one may decide (not
    those they are party to: another coordinator decides those), oldest first; a session is
    one entry (its first leg beside it), there once no attendee is left to confirm."""
    waiting: list[ExchangePublic] = []
    for state in QUEUE_STATES:
        waiting += await all_exchanges(exchanges, access, ExchangeFilters(state=state))
    mine: list[tuple[ExchangePublic, GroupSessionDetail | None]] = [
        (e, None)
        for e in waiting
        if e.group_id is None and {"approve", "reject"} & policy.open_decisions(access, e)
    ]
    sessions: dict[int, GroupSessionDetail | None] = {}
    for leg in waiting:
        if leg.group_id is None or leg.group_id in sessions:
            continue
        session = await exchanges.get(access, leg.group_id)
        assert isinstance(session, GroupSessionDetail)
        decides = {"approve", "reject"} & policy.open_group_decisions(
            access, policy.session_legs(session)
        )
        sessions[leg.group_id] = session if session.state in QUEUE_STATES and decides else None
        if sessions[leg.group_id] is not None:
            mine.append((leg, session))
    return sorted(mine, key=lambda item: (item[0].created_at, item[0].id))


def _why(exchange: ExchangePublic, session: GroupSessionDetail | None = None) -> str:
    """The rule that sent an exchange (or a session) to the queue."""
    if session is not None:
        if session.state == "disputed":
            return "an attendee disputed their part"
        return session.review_reason or EVERY_EXCHANGE
    if exchange.state == "disputed":
        return "the other party disputed it"
    return exchange.review_reason or EVERY_EXCHANGE


class CoordinatorPages(Controller):
    path = "/t/{slug:str}"

    @get("/queue")
    async def queue(self, page: PageDep, exchanges: ExchangesDep) -> Response:
        """The approval queue, oldest first."""
        return await _queue_page(page, exchanges)

    @post("/queue")
    async def decide_many(self, page: PageDep, exchanges: ExchangesDep) -> Response:
        """Approve or reject the ticked exchanges; each succeeds or fails on its own."""
        access = page.access
        form = await page.request.form()
        action = form.get("action")
        ids = [int(value) for value in form.getall("ids", []) if _ID.fullmatch(str(value))][:100]
        reason = form.get("reason")
        if action not in ("approve", "reject"):
            return await _queue_page(
                page, exchanges, error="Choose approve or reject.", status_code=422
            )
        if not ids:
            return await _queue_page(
                page, exchanges, error="Tick at least one exchange first.", status_code=422
            )
        outcomes: list[dict[str, Any]] = []
        if action == "approve":
            result = await exchanges.approve_many(access, ids)
            outcomes = [
                {"id": o.id, "ok": o.error is None, "detail": o.error.detail if o.error else ""}
                for o in result.results
            ]
        else:
            for exchange_id in ids:
                try:
                    await exchanges.decide(
                        access, exchange_id, "reject", reason if isinstance(reason, str) else None
                    )
                except TimebankError as error:
                    outcomes.append({"id": exchange_id, "ok": False, "detail": error.detail})
                else:
                    outcomes.append({"id": exchange_id, "ok": True, "detail": ""})
        for outcome in outcomes:
            outcome["action"] = "approved" if action == "approve" else "rejected"
        return await _queue_page(page, exchanges, outcomes=outcomes)

    @get("/participants")
    async def participants_list(self, page: PageDep) -> Response:
        """Everyone in the timebank with their balances (coordinators)."""
        everyone = []
        after_id = None
        while True:
            listed = await page.participants.list_participants(
                page.access, after_id=after_id, limit=200
            )
            if listed.view != "full":  # members get a directory without balances: not this page
                raise Forbidden("the list of participants with balances is for coordinators")
            everyone += listed.items
            if listed.next_after_id is None or len(everyone) >= MAX_PEOPLE_LISTED:
                break
            after_id = listed.next_after_id
        return await page.render("participants.html", everyone=everyone)

    @get("/participants/new")
    async def invite_form(self, page: PageDep) -> Response:
        """The form to add (and invite) a participant."""
        if not page.access.can_manage:  # the same test as the service's when the form is sent
            raise Forbidden("only a coordinator of this timebank (or an admin) can add people")
        return await _invite_page(page, _blank_invite(), {})

    @post("/participants/new")
    async def invite(self, page: PageDep, settings: SettingsDep) -> Response:
        """Add a participant; with an email, hand over the one-time invitation link."""
        form = await page.request.form()
        values = {
            name: str(form.get(name, "")).replace("\r\n", "\n").strip()
            for name in ("display_name", "kind", "email", "key", *CONTACT_FIELDS)
        }
        values["key"] = values["key"][:255] or str(uuid.uuid4())
        errors: dict[str, str] = {}
        status = 422
        try:
            data = ParticipantCreate.model_validate(
                {
                    "display_name": values["display_name"],
                    "kind": values["kind"],
                    "email": values["email"] or None,
                    **{name: values[name] or None for name in CONTACT_FIELDS},
                }
            )
        except ValidationError as error:
            for problem in error.errors():
                where = str(problem["loc"][0]) if problem["loc"] else "form"
                errors.setdefault(where, _plain(where, problem["msg"]))
        else:
            try:
                created = await page.participants.add_participant(page.access, data, values["key"])
            except (ValidationFailed, Conflict) as error:
                named = error.extra.get("errors") or [{"key": error.extra.get("field", "form")}]
                errors[str(named[0].get("key") or "form")] = sentence(error.detail)
                status = error.status_code
            else:
                return await page.render(
                    "invited.html",
                    status_code=201,
                    created=created,
                    invitation_url=(
                        f"{_public_base(page.request, settings)}invitation"
                        f"?token={created.invitation_token}"
                        if created.invitation_token
                        else None
                    ),
                )
        return await _invite_page(page, values, errors, status)


async def _queue_page(
    page: TimebankPage,
    exchanges: Exchanges,
    *,
    outcomes: list[dict[str, Any]] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    access = page.access
    # The listing below would show a member their own exchanges: refuse as approving does.
    policy.require_may_attempt(access, "approve")
    queue = await _queue(exchanges, access)
    flagged = await page.request.app.state.ledger_reader.flags(access)
    named = parties_of([exchange for exchange, _ in queue]) | {
        account.participant_id for account in flagged
    }
    return await page.render(
        "queue.html",
        status_code=status_code,
        queue=[(exchange, _why(exchange, session), session) for exchange, session in queue],
        names=await page.names_of(named),
        reach=await page.reach_of(named),
        categories=await category_names(page.participants, access),
        outcomes=outcomes or [],
        error=error,
        flagged=flagged,
    )


async def _invite_page(
    page: TimebankPage, values: dict[str, str], errors: dict[str, str], status_code: int = 200
) -> Response:
    return await page.render(
        "invite.html",
        status_code=status_code,
        values=values,
        errors=errors,
        kinds=KINDS,
        preferences=PREFERENCES,
    )


def _public_base(request: Request, settings: Settings) -> str:
    """Where the invited person will open their link: ``TIMEBANK_PUBLIC_URL`` when it is set
    (behind a proxy the request's Host may be anything a client sent), else this request's
    own address."""
    if settings.public_url:
        return settings.public_url.rstrip("/") + "/"
    return str(request.base_url)


def _blank_invite() -> dict[str, str]:
    blank = {"display_name": "", "kind": "member", "email": "", "key": str(uuid.uuid4())}
    return {**blank, **dict.fromkeys(CONTACT_FIELDS, "")}


def _plain(field: str, message: str) -> str:
    return {
        "display_name": "Give a name.",
        "email": "That does not look like an email address.",
        "kind": "Choose member, professional or organisation.",
        "phone": "Use digits, spaces, brackets and hyphens, like 01234 567890.",
        "postal_address": "Up to 500 characters, without control characters.",
        "contact_preference": "Choose email, phone call, text message or post.",
    }.get(field, message)
