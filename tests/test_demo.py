"""The demo loader as a newcomer meets it: a lively timebank of all three kinds of participant,
hundreds of exchanges in every state of their life over several months, logged and decided
through the services by people who can sign in with the printed passwords, reports with
something in them, a ledger that audits clean, loaded once."""

import re
from datetime import date

from sqlalchemy import text

from tests.conftest import unique_slug
from timebank.auth import repository as auth_repository
from timebank.auth.secrets import hash_password
from timebank.auth.service import AuthService
from timebank.db.engine import create_engine
from timebank.demo import load_demo
from timebank.ledger.audit import audit
from timebank.reports.service import Reports
from timebank.settings import Settings

_FIGURES = text(
    """
    SELECT (SELECT count(*) FROM participants WHERE timebank_id = t.id) AS participants,
           (SELECT count(DISTINCT kind) FROM participants WHERE timebank_id = t.id) AS kinds,
           (SELECT count(*) FROM participants
             WHERE timebank_id = t.id AND kind = 'member') AS members,
           (SELECT min(joined_on) FROM participants WHERE timebank_id = t.id) AS first_joined,
           (SELECT count(*) FROM exchanges WHERE timebank_id = t.id) AS exchanges,
           (SELECT count(*) FROM exchange_decisions d JOIN exchanges e ON e.id = d.exchange_id
             WHERE e.timebank_id = t.id) AS decisions,
           (SELECT count(*) FROM transfers
             WHERE timebank_id = t.id AND kind = 'exchange') AS exchange_transfers,
           (SELECT count(*) FROM transfers WHERE timebank_id = t.id AND kind = 'grant') AS grants,
           (SELECT count(*) FROM transfers
             WHERE timebank_id = t.id AND kind = 'reversal') AS reversals,
           (SELECT count(*) FROM postings WHERE timebank_id = t.id) AS postings,
           (SELECT count(*) FROM timebank_roles WHERE timebank_id = t.id) AS roles,
           (SELECT count(*) FROM users WHERE email LIKE '%@' || t.slug || '.example') AS users
      FROM timebanks t WHERE t.slug = :slug
    """
)

_STATES = text(
    """
    SELECT e.state, count(*) AS exchanges FROM exchanges e JOIN timebanks t ON t.id = e.timebank_id
     WHERE t.slug = :slug GROUP BY e.state
    """
)

_DATES = text(
    """
    SELECT count(DISTINCT date_trunc('month', e.service_date)) AS months,
           max(e.service_date) AS last,
           count(*) FILTER (WHERE e.service_date < g.joined_on
                               OR e.service_date < r.joined_on) AS before_joining
      FROM exchanges e
      JOIN timebanks t ON t.id = e.timebank_id
      JOIN participants g ON g.id = e.giver_id
      JOIN participants r ON r.id = e.receiver_id
     WHERE t.slug = :slug
    """
)

_WHO_DECIDED = text(
    """
    SELECT d.action, d.actor_role, count(*) AS decisions
      FROM exchange_decisions d
      JOIN exchanges e ON e.id = d.exchange_id
      JOIN timebanks t ON t.id = e.timebank_id
     WHERE t.slug = :slug GROUP BY d.action, d.actor_role
    """
)


def _assert_points_to_the_pages(summary: str, slug: str) -> None:
    """The closing "Next" text names the pages a person opens, not only the API."""
    next_text = summary[summary.index("Next:") :]
    for page in ("/ ", f"/t/{slug}/log ", f"/t/{slug}/queue ", f"/t/{slug}/report "):
        assert f"http://127.0.0.1:8000{page}" in next_text, next_text  # the URL, then its use


def _login(summary: str, role: str) -> tuple[str, str]:
    """The email and password printed for ``role``."""
    found = re.search(rf"^\s+{role}\s+(\S+@\S+)\s+(\S+)", summary, re.MULTILINE)
    assert found, summary
    return found[1], found[2]


async def test_demo_loads_a_lively_timebank_newcomers_can_sign_in_to(database_url):
    settings = Settings(report_settle_seconds=0)
    slug = unique_slug("demo")

    summary = await load_demo(database_url, settings, slug=slug, seed=2026)

    assert slug in summary and "Riverside Timebank" in summary
    assert "timebank serve" in summary and "/api/v1/auth/login" in summary
    assert "timebank verify" in summary
    _assert_points_to_the_pages(summary, slug)
    logins = {role: _login(summary, role) for role in ("site admin", "coordinator", "funder")}
    assert logins["coordinator"][0] == f"priya@{slug}.example"
    members = re.findall(r"^\s+member\s+(\S+@\S+)\s+(\S+)", summary, re.MULTILINE)
    assert len(members) >= 6
    passwords = [password for _, password in [*logins.values(), *members]]
    assert len(set(passwords)) == len(passwords)  # each generated on its own
    assert all(len(password) >= 16 for password in passwords)

    engine = create_engine(database_url, settings)
    try:
        async with engine.connect() as conn:
            figures = (await conn.execute(_FIGURES, {"slug": slug})).one()
            rows = await conn.execute(_STATES, {"slug": slug})
            states = {row.state: row.exchanges for row in rows}
            dates = (await conn.execute(_DATES, {"slug": slug})).one()
            decided = {
                (action, role): count
                for action, role, count in (await conn.execute(_WHO_DECIDED, {"slug": slug}))
            }
        assert figures.kinds == 3  # members, professionals and organisations
        assert figures.members >= 25
        assert figures.grants == figures.participants  # everyone got welcome hours

        # Exchanges in every state of their life, most of them approved.
        assert figures.exchanges >= 250
        assert states["approved"] >= 200
        assert states["awaiting_approval"] >= 10  # the coordinator has work waiting
        for state in ("logged", "disputed", "rejected", "cancelled", "reversed"):
            assert states.get(state, 0) > 0, states
        assert figures.exchange_transfers == states["approved"] + states["reversed"]
        assert figures.reversals == states["reversed"]

        # Over several months, never in the future, never before someone joined.
        assert dates.months >= 6
        assert dates.last <= date.today()
        assert dates.before_joining == 0

        # Members log their own and confirm or dispute each other's; the coordinator logs for
        # those who cannot, and takes the decisions.
        assert decided[("log", "member")] > 0 and decided[("log", "coordinator")] > 0
        assert decided[("confirm", "member")] > 0 and decided[("dispute", "member")] > 0
        assert decided[("approve", "coordinator")] >= 200
        assert decided[("reverse", "coordinator")] == states["reversed"]

        # The printed coordinator login works, and her report has something to show.
        auth = AuthService(engine, settings)
        email, password = logins["coordinator"]
        session = await auth.login(email, password, "test")
        principal = await auth.authenticate(session.token)
        assert principal is not None
        access = await auth.access(principal, slug)
        assert access.is_coordinator
        reports = Reports(engine, settings)
        report = await reports.contribution(access, start=figures.first_joined, end=date.today())
        assert report.totals.active is not None and report.totals.active > 0
        assert report.totals.hours is not None and report.totals.hours > 0
        assert report.totals.exchanges == states["approved"]
        assert sum(1 for bucket in report.series if bucket.hours) >= 6

        # So does the funder's, who sees aggregates only.
        email, password = logins["funder"]
        funder = await auth.authenticate((await auth.login(email, password, "test")).token)
        assert funder is not None
        funder_access = await auth.access(funder, slug)
        assert funder_access.is_funder and funder_access.participant_id is None
        # (the latest published quarter: funders get whole closed periods only)
        funder_report = await reports.contribution(funder_access)
        assert funder_report.view == "funder"

        async with engine.connect() as conn:
            audited = await audit(conn, slug)
        assert audited.ok, [str(finding) for finding in audited.findings]
        assert audited.transfers == figures.exchange_transfers + figures.grants + figures.reversals

        again = await load_demo(database_url, settings, slug=slug, seed=2026)

        assert "already there" in again
        assert not any(password in again for password in passwords)  # shown once only
        async with engine.connect() as conn:
            assert (await conn.execute(_FIGURES, {"slug": slug})).one() == figures
        # Nobody's password changed, and the output says so: the printed ones still work.
        assert "nothing loaded and no password changed" in again, again
        for email, password in [*logins.values(), *members]:
            assert (await auth.login(email, password, "test")).token
        _assert_points_to_the_pages(again, slug)
    finally:
        await engine.dispose()


async def test_accounts_already_using_demo_addresses_keep_their_passwords(database_url):
    """An admin and a coordinator account already there (say, from a timebank of the same
    slug that is gone) are used as they are: no new password, and the summary says so."""
    settings = Settings(report_settle_seconds=0)
    slug = unique_slug("demo")
    engine = create_engine(database_url, settings)
    auth = AuthService(engine, settings)
    try:
        await auth.create_admin(f"admin@{slug}.example", "the admin's own password")
        async with engine.begin() as conn:
            await auth_repository.insert_user(
                conn,
                email=f"priya@{slug}.example",
                display_name="Priya",
                password_hash=hash_password("Priya's own password"),
            )

        summary = await load_demo(database_url, settings, slug=slug, seed=2026)

        kept = summary[summary.index("already there and are left as they were") :]
        assert f"admin@{slug}.example" in kept and f"priya@{slug}.example" in kept, summary
        assert not re.search(rf"^\s+coordinator\s+priya@{slug}\.example\s+\S+\s+Priya", summary)
        for email, password in (
            (f"admin@{slug}.example", "the admin's own password"),
            (f"priya@{slug}.example", "Priya's own password"),
        ):
            principal = await auth.authenticate((await auth.login(email, password, "t")).token)
            assert principal is not None
        access = await auth.access(principal, slug)
        assert access.is_coordinator  # Priya's own account took up her part
        _assert_points_to_the_pages(summary, slug)
    finally:
        await engine.dispose()
