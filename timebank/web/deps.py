"""The services the pages call: the same ones the JSON API calls, built once at startup."""

from __future__ import annotations

from typing import TypeAlias

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from timebank.deps import EngineDep, SettingsDep
from timebank.exchanges.service import Exchanges
from timebank.ledger.reader import LedgerReader
from timebank.participants.service import Participants
from timebank.reports.service import Reports
from timebank.web.session import provide_page_access, provide_page_principal

ExchangesDep: TypeAlias = NamedDependency[Exchanges]
ParticipantsDep: TypeAlias = NamedDependency[Participants]
LedgerReaderDep: TypeAlias = NamedDependency[LedgerReader]
ReportsDep: TypeAlias = NamedDependency[Reports]


def provide_participants(engine: EngineDep, settings: SettingsDep) -> Participants:
    return Participants(engine, settings)


def provide_exchanges(state: State) -> Exchanges:
    return state.exchanges


def provide_ledger_reader(state: State) -> LedgerReader:
    return state.ledger_reader


def provide_reports(state: State) -> Reports:
    return state.reports


PAGE_DEPENDENCIES = {
    # Pages know people by their session cookie only (``access`` asks exactly as the API's
    # does, bar the bearer token).
    "principal": Provide(provide_page_principal),
    "access": Provide(provide_page_access),
    "exchanges": Provide(provide_exchanges, sync_to_thread=False),
    "participants": Provide(provide_participants, sync_to_thread=False),
    "ledger_reader": Provide(provide_ledger_reader, sync_to_thread=False),
    "reports": Provide(provide_reports, sync_to_thread=False),
}
