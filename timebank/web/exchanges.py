"""Member pages: home with the balance, the "log hours" form, one's exchanges, and the
decisions on one exchange (confirm, dispute, cancel; approve, reject, reverse for
coordinators). Every rule is the exchanges service's; these handlers only ask and show."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, PathParameter, QueryParameter

from timebank.auth.schemas import TimebankAccess
from timebank.deps import AccessDep
from timebank.errors import Conflict, IdempotencyMismatch, NotFound, ValidationFailed
from timebank.exchanges import policy
from timebank.exchanges.schemas import ExchangeFilters, ExchangePublic
from timebank.exchanges.service import Exchanges
from timebank.openapi import MAX_ID
from timebank.web import log_form
from timebank.web.deps import ExchangesDep, LedgerReaderDep, ParticipantsDep
from timebank.web.people import category_names, names
from timebank.web.render import local_path, page, redirect

ExchangeId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
DECISIONS = ("confirm", "dispute", "cancel", "approve", "reject", "reverse")
RECENT = 50
MAX_LISTED = 2000


async def all_exchanges(
    exchanges: Exchanges, access: TimebankAccess, filters: ExchangeFilters
) -> list[ExchangePublic]:
    """Every exchange the filters select (oldest first), up to MAX_LISTED."""
    found: list[ExchangePublic] = []
    after_id = None
    while len(found) < MAX_LISTED:
        batch = await exchanges.list(
            access,
            ExchangeFilters(
                state=filters.state,
                participant_id=filters.participant_id,
                after_id=after_id,
                limit=200,
            ),
        )
        found.extend(batch.items)
        if batch.next_after_id is None:
            break
        after_id = batch.next_after_id
    return found


def _waiting_for_me(access: TimebankAccess, exchange: ExchangePublic) -> bool:
    """Logged by the other party, and waiting for this person to confirm or dispute."""
    return "confirm" in policy.open_decisions(access, exchange)


class ExchangePages(Controller):
    path = "/t/{slug:str}"

    @get("/")
    async def home(
        self,
        request: Request,
        access: AccessDep,
        participants: ParticipantsDep,
        ledger_reader: LedgerReaderDep,
        exchanges: ExchangesDep,
    ) -> Response:
        """Home: my balance, what waits for me, and the big "log hours" button."""
        timebank = await participants.show_timebank(access)
        me = access.party_id
        balance = await ledger_reader.balance(access, me) if me is not None else None
        waiting = 0
        if me is not None:
            logged = await all_exchanges(
                exchanges, access, ExchangeFilters(state="logged", participant_id=me)
            )
            waiting = sum(_waiting_for_me(access, exchange) for exchange in logged)
        return page(
            request, "home.html", access=access, timebank=timebank, balance=balance, waiting=waiting
        )

    @get("/log")
    async def log_form_page(
        self,
        request: Request,
        access: AccessDep,
        participants: ParticipantsDep,
        on_behalf: Annotated[bool, QueryParameter(name="on-behalf")] = False,
    ) -> Response:
        """The "log hours" form, with a one-time key so that it records once however often
        it is sent."""
        form = log_form.LogForm.blank(date.today())
        return await self._form(request, access, participants, form, on_behalf=on_behalf)

    async def _form(
        self,
        request: Request,
        access: TimebankAccess,
        participants: ParticipantsDep,
        form: log_form.LogForm,
        *,
        on_behalf: bool,
        status_code: int = 200,
    ) -> Response:
        on_behalf = access.can_manage and (on_behalf or access.party_id is None)
        timebank = await participants.show_timebank(access)
        people = await names(participants, access)
        people.pop(access.party_id or 0, None)
        return page(
            request,
            "log.html",
            status_code=status_code,
            access=access,
            timebank=timebank,
            form=form,
            on_behalf=on_behalf,
            people=sorted(set(people.values()), key=str.casefold),
            categories=await participants.list_categories(access),
            today=date.today().isoformat(),
        )

    @post("/log")
    async def log(
        self,
        request: Request,
        access: AccessDep,
        participants: ParticipantsDep,
        exchanges: ExchangesDep,
    ) -> Response:
        """Record what the form says, once: a double tap, a resubmit or a retry carries the
        same key and answers with the exchange recorded the first time."""
        sent = await request.form()
        form = log_form.LogForm.from_form(sent)
        on_behalf = sent.get("mode") == "on_behalf" or access.party_id is None
        data = await log_form.read(form, participants, access, on_behalf=on_behalf)
        status = 422
        if data is not None:
            try:
                logged = await exchanges.log(access, data, form.key)
            except IdempotencyMismatch:
                form.notice = (
                    "This form was already used to record something else. Check your "
                    "exchanges before sending it again: it now has a fresh key."
                )
                form.key = log_form.LogForm.blank(date.today()).key
                status = 409
            except (ValidationFailed, Conflict) as error:
                log_form.explain(form, error, on_behalf=on_behalf)
                status = error.status_code
            else:
                exchange = logged.exchange
                return redirect(f"/t/{access.timebank_slug}/exchanges/{exchange.id}", logged=1)
        return await self._form(
            request, access, participants, form, on_behalf=on_behalf, status_code=status
        )

    @get("/exchanges")
    async def my_exchanges(
        self,
        request: Request,
        access: AccessDep,
        participants: ParticipantsDep,
        exchanges: ExchangesDep,
    ) -> Response:
        """My exchanges, newest first; those the other party logged can be confirmed here."""
        timebank = await participants.show_timebank(access)
        me = access.party_id
        listed = await all_exchanges(exchanges, access, ExchangeFilters(participant_id=me))
        recent = list(reversed(listed))[:RECENT]
        return page(
            request,
            "exchanges.html",
            access=access,
            timebank=timebank,
            waiting=[e for e in recent if _waiting_for_me(access, e)],
            others=[e for e in recent if not _waiting_for_me(access, e)],
            names=await names(participants, access),
            categories=await category_names(participants, access),
            total=len(listed),
        )

    @get("/exchanges/{exchange_id:int}")
    async def exchange(
        self,
        request: Request,
        access: AccessDep,
        participants: ParticipantsDep,
        exchanges: ExchangesDep,
        exchange_id: ExchangeId,
        logged: Annotated[bool, QueryParameter()] = False,
        done: Annotated[str | None, QueryParameter(max_length=20)] = None,
    ) -> Response:
        """One exchange: what was recorded, its state, its history, and what I may do."""
        return await self._exchange(
            request, access, participants, exchanges, exchange_id, logged=logged, done=done
        )

    async def _exchange(
        self,
        request: Request,
        access: TimebankAccess,
        participants: ParticipantsDep,
        exchanges: Exchanges,
        exchange_id: int,
        *,
        logged: bool = False,
        done: str | None = None,
        error: str | None = None,
        status_code: int = 200,
    ) -> Response:
        detail = await exchanges.get(access, exchange_id)
        open_now = policy.open_decisions(access, detail)
        may = {action: action in open_now for action in DECISIONS}
        return page(
            request,
            "exchange.html",
            status_code=status_code,
            access=access,
            timebank=await participants.show_timebank(access),
            exchange=detail,
            names=await names(participants, access),
            categories=await category_names(participants, access),
            logged=logged,
            done=done if done in DECISIONS else None,
            error=error,
            may=may,
        )

    @post("/exchanges/{exchange_id:int}/{action:str}")
    async def decide(
        self,
        request: Request,
        access: AccessDep,
        participants: ParticipantsDep,
        exchanges: ExchangesDep,
        exchange_id: ExchangeId,
        action: FromPath[str],
    ) -> Response:
        """Confirm, dispute, cancel, approve, reject or reverse one exchange."""
        if action not in DECISIONS:
            raise NotFound(f"there is no {action!r} to do on an exchange")
        form = await request.form()
        reason = form.get("reason")
        try:
            await exchanges.decide(
                access, exchange_id, action, reason if isinstance(reason, str) else None
            )
        except (ValidationFailed, Conflict) as error:
            return await self._exchange(
                request,
                access,
                participants,
                exchanges,
                exchange_id,
                error=error.detail,
                status_code=error.status_code,
            )
        back = f"/t/{access.timebank_slug}/exchanges/{exchange_id}?done={action}"
        next_page = form.get("next")
        return redirect(local_path(next_page if isinstance(next_page, str) else None, back))
