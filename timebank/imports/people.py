"""Importing people: each row checked against the timebank and the rest of the file, then the
new people written in one statement and the opening balances set through the ledger.

Someone already in the timebank is found by external id, then by email (ignoring case), and
left as they are: only an opening balance they do not have yet is set, and the file's external
id when they had none (so that a history file can name them by it). So importing the same
file twice changes nothing the second time. New people get the timebank's default limits and
no welcome hours: their opening balance is what they bring."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.hours import format_minutes
from timebank.imports import repository
from timebank.imports.formats import CellError, read_balance, read_date
from timebank.imports.reading import Row, Table
from timebank.imports.report import ImportReport, RowProblem
from timebank.imports.repository import NewPeople, Person, Place
from timebank.ledger import pot
from timebank.names import BIDI_CONTROLS, clean_name
from timebank.participants.contact import contact_problem, default_preference
from timebank.participants.schemas import (
    EARLIEST_JOINED_ON,
    EMAIL_PATTERN,
    JOINED_ON_DAYS_AHEAD,
)

KINDS = {"member": "member", "professional": "professional", "organisation": "organisation"}
KINDS["organization"] = "organisation"
CONTACT_PREFERENCES = ("email", "phone", "text", "post")
_EMAIL = re.compile(EMAIL_PATTERN)
_PHONE = re.compile(r"^\+?[0-9 ()-]{3,30}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

Progress = Callable[[str, int, int], None]


@dataclass
class PersonRow:
    line: int
    name: str
    kind: str
    email: str | None
    phone: str | None
    postal_address: str | None
    contact_preference: str
    joined_on: date | None
    external_id: str | None
    opening: int | None


@dataclass
class PeoplePlan:
    """What importing the file would do: the people to add, and the opening balances to set
    (on new people by their place in ``new``, on existing ones by participant id)."""

    new: list[PersonRow] = field(default_factory=list)
    openings_new: dict[int, int] = field(default_factory=dict)
    openings_existing: dict[int, int] = field(default_factory=dict)
    # Existing people found by email who had no external id: the file's, recorded.
    external_ids: dict[int, str] = field(default_factory=dict)

    def writes(self) -> bool:
        return bool(self.new or self.openings_new or self.openings_existing or self.external_ids)


class _Faults:
    def __init__(self, row: Row) -> None:
        self.row = row
        self.found: list[RowProblem] = []

    def add(self, name: str, reason: str) -> None:
        self.found.append(RowProblem(self.row.line, self.row.column(name), reason))


def _optional(value: str) -> str | None:
    return value or None


def parse_person(row: Row, *, timeoverflow: bool, faults: _Faults) -> PersonRow | None:
    """The row's fields, or None with its faults recorded."""
    name = kind = ""
    try:
        name = clean_name(row.get("name"), 200)
    except ValueError as error:
        faults.add("name", f"the name {error}")
    kind = KINDS.get(row.get("kind").lower() or "member", "")
    if not kind:
        faults.add("kind", "the kind is member, professional or organisation")
    email = _optional(row.get("email"))
    if email is not None and (not 3 <= len(email) <= 254 or not _EMAIL.match(email)):
        faults.add("email", f"{email!r} is not an email address")
    elif email is not None and not (email.isascii() and email.isprintable()):
        # Matching ignores case, as PostgreSQL's lower() does; outside ASCII the two can
        # disagree (a dotted capital I), so an import takes addresses as mail systems send them.
        faults.add(
            "email", f"{email!r}: write the address in plain ASCII (a domain in its xn-- form)"
        )
    phone = _optional(row.get("phone")) or _optional(row.get("alt_phone"))
    if phone is not None and not _PHONE.match(phone):
        faults.add("phone", f"{phone!r} is not a phone number (digits, spaces, + ( ) -)")
    address = _optional(row.get("postal_address"))
    if address is not None and (
        len(address) > 500
        or _CONTROL.search(address.replace("\n", ""))
        or any(char in BIDI_CONTROLS for char in address)
    ):
        faults.add("postal_address", "the address needs 1 to 500 printable characters")
    preference = row.get("contact_preference").lower() or default_preference(email, phone, address)
    if preference not in CONTACT_PREFERENCES:
        faults.add("contact_preference", "the contact preference is email, phone, text or post")
    elif row.get("contact_preference") and (
        missing := contact_problem(preference, email, phone, address)
    ):
        faults.add("contact_preference", missing[1])
    joined_on = None
    if row.get("joined_on"):
        try:
            joined_on = read_date(row.get("joined_on"), timeoverflow=timeoverflow)
            latest = date.today() + timedelta(days=JOINED_ON_DAYS_AHEAD)
            if not EARLIEST_JOINED_ON <= joined_on <= latest:
                faults.add("joined_on", f"{joined_on} is not a believable date of joining")
        except CellError as error:
            faults.add("joined_on", str(error))
    external_id = _optional(row.get("external_id"))
    if external_id is not None and (len(external_id) > 100 or _CONTROL.search(external_id)):
        faults.add("external_id", "the external id needs 1 to 100 printable characters")
    opening = None
    if row.get("opening_balance"):
        try:
            opening = read_balance(row.get("opening_balance"), timeoverflow=timeoverflow)
        except CellError as error:
            faults.add("opening_balance", f"bad duration: {error}")
    if faults.found:
        return None
    return PersonRow(
        row.line, name, kind, email, phone, address, preference, joined_on, external_id, opening
    )


def _limit_fault(minutes: int, floor: int, ceiling: int) -> str | None:
    if minutes < floor:
        return (
            f"a balance that would cross a limit: {format_minutes(minutes)} is below the floor "
            f"of {format_minutes(floor)}"
        )
    if minutes > ceiling:
        return (
            f"a balance that would cross a limit: {format_minutes(minutes)} is above the "
            f"ceiling of {format_minutes(ceiling)}"
        )
    return None


def check_people(
    table: Table, place: Place, existing: list[Person], report: ImportReport
) -> PeoplePlan:
    """Check every row; fill ``report`` (counts, problems) and return what would be written
    for the good rows."""
    timeoverflow = table.format.name == "timeoverflow"
    by_external = {p.external_id: p for p in existing if p.external_id is not None}
    by_email = {p.email.lower(): p for p in existing if p.email is not None}
    seen_external: dict[str, int] = {}
    seen_email: dict[str, int] = {}
    plan = PeoplePlan()
    report.rows = len(table.rows) + len(table.problems)
    report.problems.extend(table.problems)
    for row in table.rows:
        faults = _Faults(row)
        _note_duplicates(row, faults, seen_external, seen_email)
        person = parse_person(row, timeoverflow=timeoverflow, faults=faults)
        if person is None:
            report.problems.extend(faults.found)
            continue
        email_key = person.email.lower() if person.email else None
        match = by_external.get(person.external_id) if person.external_id else None
        if match is None and email_key is not None:
            match = by_email.get(email_key)
            if (
                match is not None
                and match.external_id is not None
                and person.external_id is not None
            ):
                faults.add(
                    "email",
                    f"a duplicate: {person.email!r} belongs to someone here with another "
                    "external id",
                )
        elif match is not None and email_key is not None:
            other = by_email.get(email_key)
            if other is not None and other.id != match.id:
                faults.add("email", f"a duplicate: {person.email!r} belongs to someone else here")
        if match is not None and person.opening is not None and not faults.found:
            _check_existing_opening(person, match, faults, plan)
        elif match is None and person.opening is not None:
            fault = _limit_fault(person.opening, place.floor, place.ceiling)
            if fault:
                faults.add("opening_balance", fault)
        if faults.found:
            report.problems.extend(faults.found)
            continue
        if match is not None:
            report.already_there += 1
            if match.external_id is None and person.external_id is not None:
                plan.external_ids[match.id] = person.external_id
            continue
        if person.opening is not None:
            plan.openings_new[len(plan.new)] = person.opening
        plan.new.append(person)
    report.new = len(plan.new)
    report.opening_balances = len(plan.openings_new) + len(plan.openings_existing)
    report.external_ids_recorded = len(plan.external_ids)
    return plan


def _note_duplicates(
    row: Row, faults: _Faults, seen_external: dict[str, int], seen_email: dict[str, int]
) -> None:
    """A row naming an external id or an email an earlier row of the file named (good or
    bad) is a duplicate."""
    external_id, email = row.get("external_id"), row.get("email").lower()
    if external_id and external_id in seen_external:
        line = seen_external[external_id]
        faults.add(
            "external_id", f"a duplicate: external id {external_id!r} is also on line {line}"
        )
    if email and email in seen_email:
        faults.add(
            "email", f"a duplicate: {row.get('email')!r} is also on line {seen_email[email]}"
        )
    if external_id:
        seen_external.setdefault(external_id, row.line)
    if email:
        seen_email.setdefault(email, row.line)


def _check_existing_opening(
    person: PersonRow, match: Person, faults: _Faults, plan: PeoplePlan
) -> None:
    assert person.opening is not None
    if match.opening is not None:
        if match.opening != person.opening:
            faults.add(
                "opening_balance",
                f"the opening balance is already set, to {format_minutes(match.opening)}",
            )
        return
    if match.closed:
        faults.add("opening_balance", "this person has left: their account is closed")
        return
    if match.balance - match.pending_out + person.opening < match.floor or (
        match.balance + match.pending_in + person.opening > match.ceiling
    ):
        faults.add(
            "opening_balance",
            f"a balance that would cross a limit: {format_minutes(person.opening)} more does "
            f"not fit between {format_minutes(match.floor)} and {format_minutes(match.ceiling)}",
        )
        return
    plan.openings_existing[match.id] = person.opening


async def write_people(
    conn: AsyncConnection, place: Place, plan: PeoplePlan, user_id: int | None, progress: Progress
) -> None:
    """Add the new people (one statement) and set every opening balance through the ledger's
    door, in the caller's transaction."""
    new = plan.new
    ids: list[int] = []
    if new:
        ids = await repository.insert_people(
            conn,
            place,
            NewPeople(
                kind=[p.kind for p in new],
                name=[p.name for p in new],
                joined_on=[p.joined_on for p in new],
                email=[p.email for p in new],
                phone=[p.phone for p in new],
                postal_address=[p.postal_address for p in new],
                contact_preference=[p.contact_preference for p in new],
                external_id=[p.external_id for p in new],
            ),
            place.floor,
            place.ceiling,
        )
    progress("people", len(ids), len(new))
    if plan.external_ids:
        await repository.record_external_ids(conn, place.id, plan.external_ids)
    openings = dict(plan.openings_existing)
    openings.update({ids[index]: minutes for index, minutes in plan.openings_new.items()})
    connection = await repository.raw(conn)
    for done, (participant_id, minutes) in enumerate(sorted(openings.items()), start=1):
        await pot.set_opening(connection, place.id, participant_id, minutes, user_id=user_id)
        if done % 500 == 0 or done == len(openings):
            progress("opening balances", done, len(openings))
