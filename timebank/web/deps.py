"""The services the pages call, provided by the same functions as for the JSON API."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency, Provide

from timebank.exchanges.controllers import provide_exchanges
from timebank.exchanges.service import Exchanges
from timebank.ledger.controllers import provide_ledger_reader
from timebank.ledger.reader import LedgerReader
from timebank.participants.controllers import provide_participants
from timebank.participants.service import Participants
from timebank.reports.controllers import provide_reports
from timebank.reports.service import Reports
from timebank.web.session import provide_page_access, provide_page_principal

ExchangesDep: TypeAlias = NamedDependency[Exchanges]
ParticipantsDep: TypeAlias = NamedDependency[Participants]
LedgerReaderDep: TypeAlias = NamedDependency[LedgerReader]
ReportsDep: TypeAlias = NamedDependency[Reports]

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
