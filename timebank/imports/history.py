"""Importing history: past exchanges, each row checked (its people, date, minutes, category),
then every account's running balance in service-date order against its limits; the good
rows written set-based, as approved exchanges with their transfers.

A row's identity is its import key: a hash of its normalised fields (the people as resolved,
minutes, date, category, description) and of its occurrence among identical rows of the
file. It is stored with the exchange, unique per timebank, so importing the same file again
finds every row already there and writes nothing."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import asyncpg

from timebank.hours import format_minutes
from timebank.imports import repository
from timebank.imports.formats import (
    HIDDEN_PEOPLE,
    NAME_WITH_NUMBER,
    CellError,
    read_date,
    read_minutes,
)
from timebank.imports.reading import Row, Table
from timebank.imports.report import ImportReport, RowProblem
from timebank.imports.repository import HistoricExchanges, Person, Place
from timebank.ledger import repository as ledger_repository

EARLIEST_SERVICE_DATE = date(2000, 1, 1)
MAX_DESCRIPTION = 2000
# Exchanges posted and inserted together: one ledger batch and one insert each.
CHUNK = 50_000

Progress = Callable[[str, int, int], None]


@dataclass
class Exchange:
    line: int
    giver: Person
    receiver: Person
    minutes: int
    service_date: date
    category_id: int
    category_name: str
    description: str
    headers: dict[str, str]
    key: bytes = b""

    def column(self, name: str) -> str:
        return self.headers.get(name, name)


def _name_key(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


class Directory:
    """Who a cell names: by external id, then email, then a name only one person has."""

    def __init__(self, people: list[Person]) -> None:
        self.by_external = {p.external_id: p for p in people if p.external_id is not None}
        self.by_email = {p.email.lower(): p for p in people if p.email is not None}
        self.by_name: dict[str, list[Person]] = {}
        for person in people:
            self.by_name.setdefault(_name_key(person.name), []).append(person)

    def find(self, cell: str, *, timeoverflow: bool, number: str = "") -> Person:
        """The one person ``cell`` names, or CellError saying why not."""
        if not cell:
            raise CellError("unknown person: the cell is empty")
        if timeoverflow:
            if cell.strip().lower() in HIDDEN_PEOPLE:
                raise CellError(
                    f"unknown person: TimeOverflow no longer shows who this was ({cell!r})"
                )
            if number and number != "0" and number in self.by_external:
                return self.by_external[number]
            if match := NAME_WITH_NUMBER.match(cell):
                if match["number"] in self.by_external:
                    return self.by_external[match["number"]]
                cell = match["name"]
        elif cell in self.by_external:
            return self.by_external[cell]
        if "@" in cell and cell.lower() in self.by_email:
            return self.by_email[cell.lower()]
        named = self.by_name.get(_name_key(cell), [])
        if len(named) == 1:
            return named[0]
        if named:
            raise CellError(f"ambiguous name: {len(named)} people here are called {cell!r}")
        raise CellError(f"unknown person: nobody here has the external id, email or name {cell!r}")


def _parse(
    row: Row,
    place: Place,
    directory: Directory,
    categories: Categories,
    timeoverflow: bool,
    found: list[RowProblem],
) -> Exchange | None:
    def fault(name: str, reason: str) -> None:
        found.append(RowProblem(row.line, row.column(name), reason))

    before = len(found)
    people: dict[str, Person] = {}
    for side in ("giver", "receiver"):
        try:
            people[side] = directory.find(
                row.get(side), timeoverflow=timeoverflow, number=row.get(f"{side}_id")
            )
        except CellError as error:
            fault(side, str(error))
    minutes = 0
    try:
        minutes = read_minutes(row.get("minutes"), timeoverflow=timeoverflow)
        if minutes > place.max_exchange_minutes:
            fault(
                "minutes",
                f"bad duration: {format_minutes(minutes)} is more than this timebank's largest "
                f"exchange ({format_minutes(place.max_exchange_minutes)})",
            )
    except CellError as error:
        fault("minutes", f"bad duration: {error}")
    service_date = EARLIEST_SERVICE_DATE
    try:
        service_date = read_date(row.get("service_date"), timeoverflow=timeoverflow)
        if not EARLIEST_SERVICE_DATE <= service_date <= date.today():
            fault("service_date", f"{service_date} is not a date from 2000-01-01 to today")
    except CellError as error:
        fault("service_date", str(error))
    category = categories.lookup.get(row.get("category").lower() or "other")
    if category is None:
        fault(
            "category",
            f"unknown category {row.get('category')!r}: the categories are {categories.slugs}",
        )
    description = " — ".join(part for part in (row.get("description"), row.get("reason")) if part)
    if len(description) > MAX_DESCRIPTION:
        fault("description", f"the description is longer than {MAX_DESCRIPTION} characters")
    giver, receiver = people.get("giver"), people.get("receiver")
    if giver is not None and receiver is not None and giver.id == receiver.id:
        fault("receiver", "the giver and the receiver are the same person")
    for side, person in people.items():
        if person.closed:
            fault(side, f"{person.name} has left: their account is closed")
    if len(found) > before or giver is None or receiver is None or category is None:
        return None
    return Exchange(
        row.line,
        giver,
        receiver,
        minutes,
        service_date,
        category[0],
        category[1],
        description,
        row.headers,
    )


@dataclass(frozen=True)
class Categories:
    """The timebank's categories, found by slug or by name (ignoring case)."""

    lookup: dict[str, tuple[int, str]]
    slugs: str

    @classmethod
    def of(cls, rows: list[dict[str, object]]) -> Categories:
        lookup: dict[str, tuple[int, str]] = {}
        for row in rows:
            value = (int(str(row["id"])), str(row["name"]))
            lookup[str(row["slug"]).lower()] = value
            lookup.setdefault(str(row["name"]).lower(), value)
        return cls(lookup, ", ".join(sorted(str(row["slug"]) for row in rows)))


def _key(exchange: Exchange, occurrence: int) -> bytes:
    fields = (
        exchange.service_date.isoformat(),
        exchange.giver.id,
        exchange.receiver.id,
        exchange.minutes,
        exchange.category_id,
        exchange.description,
        occurrence,
    )
    return hashlib.sha256("\x1f".join(str(f) for f in fields).encode()).digest()


def check_history(
    table: Table,
    place: Place,
    people: list[Person],
    categories: list[dict[str, object]],
    existing_keys: set[bytes],
    report: ImportReport,
    progress: Progress,
) -> list[Exchange]:
    """Check every row; fill ``report`` and return the exchanges to write, in service-date
    order (the order the ledger posts them in)."""
    timeoverflow = table.format.name == "timeoverflow"
    directory = Directory(people)
    lookup = Categories.of(categories)
    report.rows = len(table.rows) + len(table.problems)
    report.problems.extend(table.problems)
    occurrences: dict[bytes, int] = {}
    good: list[Exchange] = []
    total = len(table.rows)
    for done, row in enumerate(table.rows, start=1):
        exchange = _parse(row, place, directory, lookup, timeoverflow, report.problems)
        if done % 50_000 == 0 or done == total:
            progress("checking", done, total)
        if exchange is None:
            continue
        identity = _key(exchange, 0)
        occurrence = occurrences.get(identity, 0)
        occurrences[identity] = occurrence + 1
        exchange.key = _key(exchange, occurrence + 1)
        if exchange.key in existing_keys:
            report.already_there += 1
            continue
        good.append(exchange)
    good.sort(key=lambda e: (e.service_date, e.line))
    kept = _within_limits(good, report.problems)
    report.new = len(kept)
    return kept


def _within_limits(exchanges: list[Exchange], problems: list[RowProblem]) -> list[Exchange]:
    """The exchanges whose postings keep both accounts within their limits at every step, in
    service-date order from the balances as they stand; a row that would cross is a problem
    and moves nothing."""
    balance: dict[int, int] = {}
    kept = []
    for exchange in exchanges:
        giver, receiver = exchange.giver, exchange.receiver
        receiver_after = balance.get(receiver.id, receiver.balance) - exchange.minutes
        giver_after = balance.get(giver.id, giver.balance) + exchange.minutes
        if receiver_after - receiver.pending_out < receiver.floor:
            reason = _crossing(receiver, receiver_after, "below its floor", receiver.floor)
            problems.append(RowProblem(exchange.line, exchange.column("receiver"), reason))
            continue
        if giver_after + giver.pending_in > giver.ceiling:
            reason = _crossing(giver, giver_after, "above its ceiling", giver.ceiling)
            problems.append(RowProblem(exchange.line, exchange.column("giver"), reason))
            continue
        balance[receiver.id], balance[giver.id] = receiver_after, giver_after
        kept.append(exchange)
    return kept


def _crossing(person: Person, after: int, where: str, limit: int) -> str:
    return (
        f"a balance that would cross a limit: {person.name}'s balance would reach "
        f"{format_minutes(after)}, {where} of {format_minutes(limit)}"
    )


async def write_history(
    conn: asyncpg.Connection,
    place: Place,
    exchanges: list[Exchange],
    user_id: int | None,
    progress: Progress,
) -> None:
    """Post the exchanges' transfers through the ledger's batch, chunk by chunk in service-date
    order, and insert each chunk's exchanges as approved on them; all in the caller's
    transaction."""
    total = len(exchanges)
    for start in range(0, total, CHUNK):
        chunk = exchanges[start : start + CHUNK]
        transfer_ids = await ledger_repository.post_many(
            conn,
            place.id,
            debits=[e.receiver.account_id for e in chunk],
            credits=[e.giver.account_id for e in chunk],
            minutes=[e.minutes for e in chunk],
            memos=[e.category_name for e in chunk],
        )
        await repository.insert_exchanges(
            conn,
            place.id,
            user_id,
            HistoricExchanges(
                giver_id=[e.giver.id for e in chunk],
                receiver_id=[e.receiver.id for e in chunk],
                minutes=[e.minutes for e in chunk],
                service_date=[e.service_date for e in chunk],
                category_id=[e.category_id for e in chunk],
                description=[e.description for e in chunk],
                transfer_id=transfer_ids,
                import_key=[e.key for e in chunk],
            ),
        )
        progress("writing", start + len(chunk), total)
