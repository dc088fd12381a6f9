"""A participant's statement for a period, oldest line first with its totals: a member's own
(``/t/{slug}/statement``), or anyone's for a coordinator, who prints it for those who get it
by post. The page prints cleanly (site.css, ``@media print``). Who may see whose statement is
the ledger reader's to decide, as for the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated

from litestar import Controller, Response, get
from litestar.params import QueryParameter

from timebank.errors import Forbidden
from timebank.ledger.reader import LedgerReader
from timebank.ledger.schemas import StatementLinePublic
from timebank.openapi import ParticipantId
from timebank.participants.names import account_holders
from timebank.web.deps import LedgerReaderDep, PageDep
from timebank.web.render import TimebankPage

DEFAULT_DAYS = 90  # the period shown unless another is chosen: the last three months or so
MAX_LINES = 2000  # the most lines one statement shows (its latest, when a period has more)
_PAGE = 500  # lines read from the ledger at a time
EARLIEST = date(1900, 1, 1)

# What each kind of line is called on a statement.
KIND_LABELS = {
    "exchange": "Exchange",
    "reversal": "Correction (an exchange reversed)",
    "grant": "From the community pot",
    "gift": "Gift",
    "opening": "Opening balance",
    "leaving": "Balance on leaving",
    "adjustment": "Adjustment",
}


@dataclass(frozen=True)
class Period:
    """The days a statement covers, both included; ``errors`` say what was wrong with the
    days asked for (the default period is shown instead)."""

    start: date
    end: date
    errors: dict[str, str]


def period_of(start: str | None, end: str | None, *, today: date) -> Period:
    """The period asked for in the page's query (``from`` and ``to``, as 2026-01-31), or the
    last ``DEFAULT_DAYS`` days when none is asked or what is asked makes no sense."""
    errors: dict[str, str] = {}
    default = Period(today - timedelta(days=DEFAULT_DAYS), today, {})
    days: dict[str, date] = {}
    for name, typed, fallback in (("from", start, default.start), ("to", end, default.end)):
        try:
            days[name] = date.fromisoformat(typed.strip()) if typed and typed.strip() else fallback
        except ValueError:
            errors[name] = "Give a day like 2026-01-31."
            days[name] = fallback
        if not EARLIEST <= days[name] <= today + timedelta(days=366):
            errors[name] = f"Give a day between {EARLIEST.isoformat()} and a year from today."
    if not errors and days["from"] > days["to"]:
        errors["from"] = "The first day must not be after the last."
    if errors:
        return Period(default.start, default.end, errors)
    return Period(days["from"], days["to"], errors)


async def lines_in(
    reader: LedgerReader, page: TimebankPage, participant_id: int, period: Period
) -> tuple[list[StatementLinePublic], bool]:
    """The statement's lines in the period, oldest first, and whether there were more than
    ``MAX_LINES`` (then the latest of them)."""
    found: list[StatementLinePublic] = []
    before = None
    while True:
        read = await reader.statement(
            page.access, participant_id, before_version=before, limit=_PAGE
        )
        for line in read.lines:
            day = line.created_at.date()
            if period.start <= day <= period.end:
                found.append(line)
        oldest = read.lines[-1].created_at.date() if read.lines else None
        before = read.next_before_version
        if before is None or oldest is None or oldest < period.start or len(found) > MAX_LINES:
            break
    return list(reversed(found[:MAX_LINES])), len(found) > MAX_LINES


async def statement_page(
    page: TimebankPage,
    reader: LedgerReader,
    participant_id: int,
    start: str | None,
    end: str | None,
) -> Response:
    today = date.today()
    period = period_of(start, end, today=today)
    person = await page.participants.show_participant(page.access, participant_id)
    lines, cut = await lines_in(reader, page, participant_id, period)
    holders = await account_holders(
        page.engine, page.access, [line.counterparty_account_id for line in lines]
    )
    shows_balance = all(line.balance_after is not None for line in lines)
    opening = closing = None
    if lines and lines[0].balance_after is not None:
        opening = lines[0].balance_after - lines[0].minutes
        closing = lines[-1].balance_after
    return await page.render(
        "statement.html",
        status_code=422 if period.errors else 200,
        person=person,
        period=period,
        asked={"from": start or "", "to": end or ""},
        lines=lines,
        cut=cut,
        holders=holders,
        kinds=KIND_LABELS,
        total_in=sum(line.minutes for line in lines if line.minutes > 0),
        total_out=sum(-line.minutes for line in lines if line.minutes < 0),
        shows_balance=shows_balance,
        opening=opening,
        closing=closing,
        today=today,
        default_days=DEFAULT_DAYS,
    )


FromDay = Annotated[str | None, QueryParameter(name="from", max_length=20)]
ToDay = Annotated[str | None, QueryParameter(name="to", max_length=20)]


class StatementPages(Controller):
    path = "/t/{slug:str}"

    @get("/statement")
    async def my_statement(
        self,
        page: PageDep,
        ledger_reader: LedgerReaderDep,
        start: FromDay = None,
        end: ToDay = None,
    ) -> Response:
        """My statement for a period, to read or print."""
        me = page.access.party_id
        if me is None:
            raise Forbidden("statements are for people with an account in this timebank")
        return await statement_page(page, ledger_reader, me, start, end)

    @get("/participants/{participant_id:int}/statement")
    async def statement(
        self,
        page: PageDep,
        ledger_reader: LedgerReaderDep,
        participant_id: ParticipantId,
        start: FromDay = None,
        end: ToDay = None,
    ) -> Response:
        """A participant's statement for a period (coordinators; a member their own), to
        print and post to those who do not read it on a screen."""
        return await statement_page(page, ledger_reader, participant_id, start, end)
