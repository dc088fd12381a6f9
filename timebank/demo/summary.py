"""What ``timebank demo`` prints: what was loaded, who can sign in, and where to go next (the
pages a person opens, and the API)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from timebank.demo.data import STATE_LABELS, WELCOME_GRANT_MINUTES
from timebank.demo.plan import Person
from timebank.participants.schemas import TimebankRecord
from timebank.reports.schemas import ContributionReport
from timebank.settings import Settings

if TYPE_CHECKING:
    from timebank.demo.loader import Loader


@dataclass(frozen=True)
class Login:
    """Who can sign in to the demo; ``password`` is None for an account that was already there
    (its password left as it was)."""

    role: str
    email: str
    password: str | None
    name: str


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def _base_url(settings: Settings) -> str:
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def next_steps(settings: Settings, slug: str, coordinator: Login | None) -> list[str]:
    """Where to go once the service runs: the pages, then the same through the API."""
    base = _base_url(settings)
    api = f"{base}/api/v1/timebanks/{slug}"
    email = coordinator.email if coordinator else f"priya@{slug}.example"
    password = coordinator.password if coordinator and coordinator.password else "<password>"
    pages = [
        (f"{base}/", "home: what waits, recent exchanges"),
        (f"{base}/t/{slug}/log", "log an exchange (as a member)"),
        (f"{base}/t/{slug}/queue", "the coordinator's queue (as the coordinator)"),
        (f"{base}/t/{slug}/report", "the funder report (as the funder)"),
    ]
    width = max(len(url) for url, _ in pages)
    return [
        "Next:",
        "  timebank serve     then open these pages, signed in with one of the demo's accounts:",
        *(f"                       {url:<{width}}  {what}" for url, what in pages),
        "                     or use the API: sign in (here as the coordinator) at"
        " POST /api/v1/auth/login:",
        f"                       curl -s {base}/api/v1/auth/login"
        " -H 'Content-Type: application/json' \\",
        f'                         -d \'{{"email": "{email}", "password": "{password}"}}\'',
        '                     and send the token back as "Authorization: Bearer <token>" to',
        f"                       {api}/exchanges?state=awaiting_approval",
        f"                       {api}/reports/contribution",
        "  timebank verify    audits the ledger",
    ]


def already_there(settings: Settings, slug: str, name: str) -> str:
    """The answer to a second load: nothing loaded, and nobody's password changed."""
    return "\n".join(
        [
            f"Demo timebank '{slug}' ({name}) is already there; nothing loaded and no"
            " password changed.",
            "Its people sign in with the passwords printed when it was loaded; to set the"
            f" admin's again: `timebank admin create --email admin@{slug}.example`.",
            "Run `timebank verify` to audit it, or `timebank demo --slug OTHER` for another.",
            "",
            *next_steps(settings, slug, None),
        ]
    )


def _sign_ins(logins: Sequence[Login]) -> list[str]:
    width = max(len(login.email) for login in logins)
    new = [login for login in logins if login.password is not None]
    kept = [login for login in logins if login.password is None]
    lines = []
    if new:
        lines += [
            "Sign in with these (passwords generated just now and shown only this once):",
            *(
                f"  {login.role:<12} {login.email:<{width}}  {login.password}  {login.name}"
                for login in new
            ),
        ]
    if kept:
        lines += [
            "These accounts were already there and are left as they were (their passwords"
            " unchanged):",
            *(f"  {login.role:<12} {login.email:<{width}}  {login.name}" for login in kept),
        ]
    return lines


def summary(
    timebank: TimebankRecord, people: Sequence[Person], loader: Loader, report: ContributionReport
) -> str:
    """What was loaded, who can sign in, and what to do next."""
    kinds = Counter(p.kind for p in people)
    states = Counter(loader.states.values())
    dates = sorted(loader.service_dates.values())
    months = len({(d.year, d.month) for d in dates})
    joined = sorted(p.joined_on for p in people)
    approved_minutes = sum(
        loader.minutes[i] for i, state in loader.states.items() if state == "approved"
    )
    by_state = ", ".join(
        f"{states[state]} {label}" for state, label in STATE_LABELS.items() if states[state]
    )
    totals = report.totals
    coordinator = next(login for login in loader.logins if login.role == "coordinator")
    lines = [
        f"Demo timebank '{timebank.slug}' ({timebank.name}) loaded.",
        "policy: the other party confirms, a coordinator approves;"
        f" {WELCOME_GRANT_MINUTES} welcome minutes for everyone from the community fund",
        f"participants: {kinds['member']} members, {kinds['professional']} professionals,"
        f" {kinds['organisation']} organisations, joined {_day(joined[0])} to {_day(joined[-1])}",
        f"exchanges: {len(loader.states)} logged, service dates {_day(dates[0])} to"
        f" {_day(dates[-1])} ({months} months)",
        f"  {by_state}"
        + (f"; {loader.skipped} skipped (an account limit refused them)" if loader.skipped else ""),
        f"hours: {approved_minutes / 60:.2f} in approved exchanges; the contribution report"
        f" counts {totals.hours:.2f} hours, {totals.active} of {totals.participants} participants"
        f" active, {totals.reciprocal} who both gave and received",
        "",
        *_sign_ins(loader.logins),
        "",
        *next_steps(loader.settings, timebank.slug, coordinator),
    ]
    return "\n".join(lines)
