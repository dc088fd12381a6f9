"""Moving in: how long importing a timebank's people and history takes, beside the time
PostgreSQL's ``COPY`` takes to load the same rows into plain tables, both measured in the same
run on a fresh embedded PostgreSQL.

The program writes two CSV files in our own columns: ``people`` participants (each with an
external id, an email for most, and an opening balance for some) and ``exchanges`` past
exchanges among them over ``years`` years. The floor is ``COPY … FROM STDIN (FORMAT csv)`` of
each file into a table of text columns, no index, no constraint: what reading the bytes into
PostgreSQL costs at least. Then the files are imported through the service's own path
(``Imports.run``, as ``timebank import people|history`` runs it): every row checked, written in
one transaction, the report aggregates brought up to date. Afterwards it checks what a
coordinator would: every balance equals the file's opening balance plus what the history
moves, every exchange is there, a second import of the history finds everything already there,
and ``timebank verify``'s checks (ledger invariants, report aggregates) are clean.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

import asyncpg

from timebank.bench.floor import WIDE_LIMITS
from timebank.bench.harness import audit_line, server_facts, start_server
from timebank.db import migrations
from timebank.db.engine import asyncpg_dsn, create_engine
from timebank.imports.service import Imports
from timebank.ledger.audit import audit
from timebank.participants.schemas import DEFAULT_CATEGORIES
from timebank.participants.service import Participants
from timebank.reports.audit import aggregate_findings
from timebank.settings import Settings

SLUG = "moving-in"
SEED = 2026
# An import's statements run far longer than a request's.
COMMAND_TIMEOUT_SECONDS = 3600.0
TARGET_SECONDS = 600.0
PEOPLE_COLUMNS = (
    "name",
    "kind",
    "email",
    "phone",
    "contact_preference",
    "joined_on",
    "opening_balance",
    "external_id",
)
HISTORY_COLUMNS = ("service_date", "giver", "receiver", "minutes", "category", "description")
DESCRIPTIONS = (
    "Gardening",
    "Lift to the surgery",
    "Shopping",
    "Befriending visit",
    "Help with forms",
    "Cooking together",
    "Computer help",
    "",
)


@dataclass
class Files:
    """The two CSV files, and what importing them must leave: each external id's balance."""

    people: bytes
    history: bytes
    people_rows: int
    history_rows: int
    balances: dict[str, int]


@dataclass
class Stages:
    """When each stage an import reports first and last moved, for a breakdown of its time."""

    started: float = field(default_factory=time.perf_counter)
    seen: dict[str, list[float]] = field(default_factory=dict)

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        self.seen.setdefault(stage, [now, now])[1] = now

    def spans(self) -> list[tuple[str, float]]:
        """Each stage's seconds, from the end of the stage before (or the start)."""
        spans, last = [], self.started
        for stage, (_, end) in sorted(self.seen.items(), key=lambda item: item[1][1]):
            spans.append((stage, end - last))
            last = end
        return spans


def _csv(columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode()


def build_files(people: int, exchanges: int, years: int, rng: random.Random) -> Files:
    """People with opening balances and a history among them; the balances it must leave."""
    today = date.today()
    first = today - timedelta(days=round(365.25 * years))
    span = (today - first).days
    kinds = rng.choices(("member", "professional", "organisation"), (90, 7, 3), k=people)
    balances: dict[str, int] = {}
    people_rows: list[tuple[object, ...]] = []
    for number, kind in enumerate(kinds, start=1):
        external = f"M{number:06d}"
        opening = rng.choice((0, 0, 0, 60, 90, 150, -30)) if number % 3 == 0 else 0
        balances[external] = opening
        sign = "-" if opening < 0 else ""
        people_rows.append(
            (
                f"{kind.capitalize()} {number}",
                kind,
                f"person{number}@example.org" if number % 5 else "",
                f"01632 {number:06d}" if number % 5 == 0 else "",
                "email" if number % 5 else "phone",
                (first - timedelta(days=rng.randrange(0, 400))).isoformat(),
                f"{sign}{abs(opening) // 60}:{abs(opening) % 60:02d}",
                external,
            )
        )
    ids = list(balances)
    # Neighbours exchange more often than strangers: a giver draws a receiver close by.
    history_rows: list[tuple[object, ...]] = []
    categories = list(DEFAULT_CATEGORIES)
    for _ in range(exchanges):
        giver_at = rng.randrange(people)
        receiver_at = (giver_at + rng.randint(1, min(50, people - 1))) % people
        giver, receiver = ids[giver_at], ids[receiver_at]
        minutes = 15 * rng.randint(1, 16)
        balances[giver] += minutes
        balances[receiver] -= minutes
        history_rows.append(
            (
                (first + timedelta(days=rng.randrange(span))).isoformat(),
                giver,
                receiver,
                minutes,
                rng.choice(categories),
                rng.choice(DESCRIPTIONS),
            )
        )
    return Files(
        people=_csv(PEOPLE_COLUMNS, people_rows),
        history=_csv(HISTORY_COLUMNS, history_rows),
        people_rows=people,
        history_rows=exchanges,
        balances=balances,
    )


async def copy_floor(dsn: str, name: str, columns: tuple[str, ...], data: bytes) -> float:
    """Seconds PostgreSQL's COPY takes to load ``data`` into a plain table of text columns."""
    conn = await asyncpg.connect(dsn)
    try:
        table = f"floor_{name}"
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.execute(f"CREATE TABLE {table} ({', '.join(f'{c} text' for c in columns)})")
        start = time.perf_counter()
        await conn.copy_to_table(
            table, source=io.BytesIO(data), columns=list(columns), format="csv", header=True
        )
        seconds = time.perf_counter() - start
        loaded = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - our name
        await conn.execute(f"DROP TABLE {table}")
    finally:
        await conn.close()
    if loaded != data.count(b"\n") - 1:
        raise RuntimeError(f"COPY loaded {loaded} rows of {name}")
    return seconds


_BALANCES = """
SELECT p.external_id, a.balance
  FROM participants p JOIN accounts a ON a.timebank_id = p.timebank_id AND a.participant_id = p.id
 WHERE p.timebank_id = $1
"""


async def run_import_benchmark(*, people: int, exchanges: int, years: int) -> dict[str, object]:
    """Build the files, time COPY and the import on a fresh embedded PostgreSQL, check the
    result, print a table and return the figures."""
    if people < 2 or exchanges < 1 or years < 1:
        raise ValueError("need people >= 2, exchanges >= 1 and years >= 1")
    rng = random.Random(SEED)  # noqa: S311 - test data, not security
    print(f"writing {people:,} people and {exchanges:,} exchanges as CSV ...", flush=True)
    files = build_files(people, exchanges, years, rng)
    print("starting a fresh embedded PostgreSQL and migrating it ...", flush=True)
    url = await asyncio.to_thread(start_server)
    await migrations.upgrade_async(url)
    dsn = asyncpg_dsn(url)
    version, _ = await server_facts(dsn)

    copy_people = await copy_floor(dsn, "people", PEOPLE_COLUMNS, files.people)
    copy_history = await copy_floor(dsn, "history", HISTORY_COLUMNS, files.history)

    settings = Settings().model_copy(update={"db_command_timeout": COMMAND_TIMEOUT_SECONDS})
    engine = create_engine(url, settings)
    try:
        timebank = await Participants(engine).create_timebank(SLUG, "Moving in", WIDE_LIMITS)
        imports = Imports(engine)
        print("importing people ...", flush=True)
        people_stages = Stages()
        people_report = await imports.run(SLUG, "people", files.people, progress=people_stages)
        people_seconds = time.perf_counter() - people_stages.started
        print("importing history ...", flush=True)
        history_stages = Stages()
        history_report = await imports.run(SLUG, "history", files.history, progress=history_stages)
        history_seconds = time.perf_counter() - history_stages.started
        print("importing the history again ...", flush=True)
        again_start = time.perf_counter()
        again = await imports.run(SLUG, "history", files.history)
        again_seconds = time.perf_counter() - again_start

        conn = await asyncpg.connect(dsn)
        try:
            balances = {row[0]: row[1] for row in await conn.fetch(_BALANCES, timebank.id)}
            counted = await conn.fetchval(
                "SELECT count(*) FROM exchanges WHERE timebank_id = $1 AND state = 'approved'",
                timebank.id,
            )
            sizes = await conn.fetchrow(
                "SELECT pg_total_relation_size('exchanges') AS exchanges,"
                " pg_total_relation_size('transfers') + pg_total_relation_size('postings')"
                " AS ledger"
            )
        finally:
            await conn.close()
        async with engine.connect() as audit_conn:
            report = await audit(audit_conn, SLUG)
            report.findings += await aggregate_findings(audit_conn, SLUG)
    finally:
        await engine.dispose()

    wrong = Counter(
        "missing" if key not in balances else "wrong"
        for key, minutes in files.balances.items()
        if balances.get(key) != minutes
    )
    checks = {
        "people imported": people_report.new == people and people_report.written,
        "exchanges imported, approved": history_report.new == exchanges == counted,
        "every balance = opening + history": not wrong,
        "a second import finds everything there": again.new == 0 and not again.written,
        "ledger and report aggregates verified": report.ok,
    }
    total = people_seconds + history_seconds
    copy_total = copy_people + copy_history

    def line(what: str, rows: int, seconds: float, floor: float | None) -> None:
        ratio = f"{seconds / floor:>10.1f}" if floor else f"{'':>10}"
        print(f"  {what:<44}{rows:>11,}{seconds:>10.2f}{rows / seconds:>12,.0f}{ratio}")

    print()
    print("Import benchmark: moving a timebank in, on a fresh embedded PostgreSQL")
    print(f"  PostgreSQL {version}; {people:,} people, {exchanges:,} exchanges over {years} years")
    print()
    print(f"  {'step':<44}{'rows':>11}{'seconds':>10}{'rows/s':>12}{'x COPY':>10}")
    line("COPY people into a plain table (floor)", people, copy_people, None)
    line("COPY history into a plain table (floor)", exchanges, copy_history, None)
    line("import people", people, people_seconds, copy_people)
    for stage, seconds in people_stages.spans():
        print(f"    {stage:<42}{'':>11}{seconds:>10.2f}")
    line("import history", exchanges, history_seconds, copy_history)
    for stage, seconds in history_stages.spans():
        print(f"    {stage:<42}{'':>11}{seconds:>10.2f}")
    line("people and history together", people + exchanges, total, copy_total)
    line("history again (nothing new to import)", exchanges, again_seconds, copy_history)
    print()
    within = "within" if total <= TARGET_SECONDS else "OVER"
    print(f"  together {total:,.0f} s: {within} the {TARGET_SECONDS / 60:.0f}-minute target")
    print(
        f"  on disk: exchanges {sizes['exchanges'] / 2**20:,.0f} MiB, "
        f"transfers and postings {sizes['ledger'] / 2**20:,.0f} MiB"
    )
    for what, ok in checks.items():
        print(f"  check: {what}: {'OK' if ok else 'FAILED'}")
    if wrong:
        print(f"    balances: {dict(wrong)}")
    print(audit_line(report))
    return {
        "people_seconds": people_seconds,
        "history_seconds": history_seconds,
        "copy_people_seconds": copy_people,
        "copy_history_seconds": copy_history,
        "again_seconds": again_seconds,
        "checks": checks,
        "audit_ok": report.ok,
    }
