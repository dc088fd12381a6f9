"""The services the pages call: the same ones the JSON API calls (those built at startup are
provided by the app, ``once_let_in``), with who asks known by their session cookie."""

from __future__ import annotations

from typing import TypeAlias

from litestar import Request
from litestar.di import NamedDependency, Provide

from timebank.deps import AccessDep, EngineDep, SettingsDep
from timebank.exchanges.service import Exchanges
from timebank.ledger.reader import LedgerReader
from timebank.participants.service import Participants
from timebank.reports.service import Reports
from timebank.web.render import TimebankPage
from timebank.web.session import provide_page_access, provide_page_principal

ExchangesDep: TypeAlias = NamedDependency[Exchanges]
ParticipantsDep: TypeAlias = NamedDependency[Participants]
LedgerReaderDep: TypeAlias = NamedDependency[LedgerReader]
ReportsDep: TypeAlias = NamedDependency[Reports]
PageDep: TypeAlias = NamedDependency[TimebankPage]


def provide_participants(engine: EngineDep, settings: SettingsDep) -> Participants:
    return Participants(engine, settings)


def provide_page(
    request: Request, access: AccessDep, participants: ParticipantsDep, engine: EngineDep
) -> TimebankPage:
    return TimebankPage(request, access, participants, engine)


PAGE_DEPENDENCIES = {
    # Pages know people by their session cookie only (``access`` asks exactly as the API's
    # does, bar the bearer token).
    "principal": Provide(provide_page_principal),
    "access": Provide(provide_page_access),
    "participants": Provide(provide_participants, sync_to_thread=False),
    "page": Provide(provide_page, sync_to_thread=False),
}
