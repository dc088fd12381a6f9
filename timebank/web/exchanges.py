"""Member pages: home with the balance, the "log hours" form, one's exchanges, and the
decisions on one exchange (confirm, dispute, cancel; approve, reject, reverse for
coordinators). Every rule is the exchanges service's: the buttons are the decisions
``policy.open_decisions`` offers, and a decision sent still goes through the service."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.params import FromPath, QueryParameter

from timebank.auth.schemas import TimebankAccess
from timebank.errors import Conflict, NotFound, ValidationFailed
from timebank.exchanges import policy
from timebank.exchanges.schemas import ExchangeFilters, ExchangePublic, GroupSessionDetail
from timebank.exchanges.service import Exchanges
from timebank.exchanges.waiting import count_waiting
from timebank.openapi import ExchangeId
from timebank.web import log_form
from timebank.web.deps import ExchangesDep, LedgerReaderDep, PageDep
from timebank.web.forms import send_once
from timebank.web.people import category_names, names, parties_of
from timebank.web.render import TimebankPage, local_path, redirect

RECENT = 50  # the exchanges "my exchanges" shows, newest first
MAX_EXCHANGES_LISTED = 2000  # the most exchanges a page reads to count or order them


async def all_exchanges(
    exchanges: Exchanges, access: TimebankAccess, filters: ExchangeFilters
) -> list[ExchangePublic]:
    """Every exchange the filters select (oldest first), up to MAX_EXCHANGES_LISTED."""
    found: list[ExchangePublic] = []
    after_id = None
    while len(found) < MAX_EXCHANGES_LISTED:
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


class ExchangePages(Controller):
    path = "/t/{slug:str}"

    @get("/")
    async def home(
        self,
        page: PageDep,
        ledger_reader: LedgerReaderDep,
        given: Annotated[bool, QueryParameter()] = False,
    ) -> Response:
        """Home: my balance (or the hours I gave and received, as the timebank chooses), what
        waits for me, and the big "log hours" button."""
        access = page.access
        me = access.party_id
        balance = await ledger_reader.balance(access, me) if me is not None else None
        waiting = await count_waiting(page.engine, access)
        return await page.render("home.html", balance=balance, waiting=waiting, given=given)

    @get("/log")
    async def log_form_page(
        self,
        page: PageDep,
        on_behalf: Annotated[bool, QueryParameter(name="on-behalf")] = False,
    ) -> Response:
        """The "log hours" form, with a one-time key so that it records once however often
        it is sent."""
        form = log_form.LogForm.blank(date.today())
        return await _form(page, form, on_behalf=on_behalf)

    @post("/log")
    async def log(self, page: PageDep, exchanges: ExchangesDep) -> Response:
        """Record what the form says, once: a double tap, a resubmit or a retry carries the
        same key and answers with the exchange recorded the first time."""
        access = page.access
        sent = await page.request.form()
        form = log_form.LogForm.from_form(sent)
        on_behalf = sent.get("mode") == "on_behalf" or access.party_id is None
        data = await log_form.read(form, page.participants, access, on_behalf=on_behalf)
        if data is None:
            return await _form(page, form, on_behalf=on_behalf, status_code=422)
        logged, status = await send_once(
            form,
            lambda: exchanges.log(access, data, form.key),
            lambda error: log_form.explain(form, error, on_behalf=on_behalf),
            (ValidationFailed, Conflict),
        )
        if logged is None:
            return await _form(page, form, on_behalf=on_behalf, status_code=status)
        return redirect(f"/t/{access.timebank_slug}/exchanges/{logged.exchange.id}", logged=1)

    @get("/exchanges")
    async def my_exchanges(self, page: PageDep, exchanges: ExchangesDep) -> Response:
        """My exchanges, newest first; those the other party logged can be confirmed here."""
        access = page.access
        listed = await all_exchanges(
            exchanges, access, ExchangeFilters(participant_id=access.party_id)
        )
        recent = list(reversed(listed))[:RECENT]
        return await page.render(
            "exchanges.html",
            waiting=[e for e in recent if policy.waits_for(access, e)],
            others=[e for e in recent if not policy.waits_for(access, e)],
            names=await page.names_of(parties_of(recent)),
            categories=await category_names(page.participants, access),
            total=len(listed),
        )

    @get("/exchanges/{exchange_id:int}")
    async def exchange(
        self,
        page: PageDep,
        exchanges: ExchangesDep,
        exchange_id: ExchangeId,
        logged: Annotated[bool, QueryParameter()] = False,
        done: Annotated[str | None, QueryParameter(max_length=20)] = None,
    ) -> Response:
        """One exchange: what was recorded, its state, its history, and what I may do."""
        return await _exchange(page, exchanges, exchange_id, logged=logged, done=done)

    @post("/exchanges/{exchange_id:int}/{action:str}")
    async def decide(
        self, page: PageDep, exchanges: ExchangesDep, exchange_id: ExchangeId, action: FromPath[str]
    ) -> Response:
        """Confirm, dispute, cancel, approve, reject or reverse one exchange."""
        if action not in policy.TRANSITIONS:
            raise NotFound(f"there is no {action!r} to do on an exchange")
        form = await page.request.form()
        reason = form.get("reason")
        try:
            await exchanges.decide(
                page.access, exchange_id, action, reason if isinstance(reason, str) else None
            )
        except (ValidationFailed, Conflict) as error:
            return await _exchange(
                page,
                exchanges,
                exchange_id,
                error=error.detail,
                status_code=error.status_code,
            )
        back = f"/t/{page.access.timebank_slug}/exchanges/{exchange_id}?done={action}"
        next_page = form.get("next")
        return redirect(local_path(next_page if isinstance(next_page, str) else None, back))


async def _form(
    page: TimebankPage, form: log_form.LogForm, *, on_behalf: bool, status_code: int = 200
) -> Response:
    access = page.access
    on_behalf = access.can_manage and (on_behalf or access.party_id is None)
    people = await names(page.participants, access, active_only=True)
    people.pop(access.party_id or 0, None)
    return await page.render(
        "log.html",
        status_code=status_code,
        form=form,
        on_behalf=on_behalf,
        people=sorted(set(people.values()), key=str.casefold),
        categories=await page.participants.list_categories(access),
        today=date.today().isoformat(),
    )


async def _exchange(
    page: TimebankPage,
    exchanges: Exchanges,
    exchange_id: int,
    *,
    logged: bool = False,
    done: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    access = page.access
    detail = await exchanges.get(access, exchange_id)
    if isinstance(detail, GroupSessionDetail):
        return await _session(
            page, detail, logged=logged, done=done, error=error, status_code=status_code
        )
    named = parties_of([detail]) | {decision.on_behalf_of for decision in detail.decisions}
    return await page.render(
        "exchange.html",
        status_code=status_code,
        exchange=detail,
        names=await page.names_of(named),
        reach=await page.reach_of(parties_of([detail])),
        categories=await category_names(page.participants, access),
        logged=logged,
        done=done if done in policy.TRANSITIONS else None,
        error=error,
        open_decisions=policy.open_decisions(access, detail),
    )


async def _session(
    page: TimebankPage,
    session: GroupSessionDetail,
    *,
    logged: bool,
    done: str | None,
    error: str | None,
    status_code: int,
) -> Response:
    """A group session: what was recorded, its legs as the caller may see them, and the
    decisions open to them on it (``policy.open_group_decisions``)."""
    access = page.access
    named = {session.host_id} | {p for leg in session.legs for p in (leg.giver_id, leg.receiver_id)}
    return await page.render(
        "session.html",
        status_code=status_code,
        session=session,
        names=await page.names_of(named),
        reach=await page.reach_of(named),
        categories=await category_names(page.participants, access),
        logged=logged,
        done=done if done in policy.TRANSITIONS else None,
        error=error,
        open_decisions=policy.open_group_decisions(access, policy.session_legs(session)),
    )
