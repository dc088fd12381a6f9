"""The whole story in a real browser: Debian's Chromium, headless, at a phone's viewport
(390 by 844), driven by Playwright against the service on a socket.

A member signs in and logs 1:30 given to another member, tapping twice and then retrying the
same form: one pending exchange. The other member confirms it; a coordinator approves it from
the queue; both balances show the change; a funder opens the report of the latest published
quarter, over other people's exchanges approved before its publication (enough people each
month that its hours are shown, not withheld). A coordinator records a walking group's
session, ten people ticked at once, and another coordinator approves it from the queue, where
it is one entry; a member gives another an hour. Every page is checked with axe-core (no
serious or critical violations) and photographed into tests/artifacts/screenshots/.

Chromium comes from the distribution (`apt-get install -y chromium`), never downloaded by
Playwright; without it these tests fail and say how to install it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.live import running_service
from tests.people import PASSWORD, Person, World, make_person, make_world
from timebank.auth.schemas import Principal, TimebankAccess
from timebank.db.engine import sqlalchemy_url
from timebank.exchanges.schemas import ExchangeCreate
from timebank.exchanges.service import Exchanges
from timebank.ledger import Ledger
from timebank.participants.service import Participants
from timebank.reports.release import release_at
from timebank.settings import Settings

HERE = Path(__file__).resolve().parent
SCREENSHOTS = HERE.parent / "artifacts" / "screenshots"
AXE = (HERE / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
PHONE = {"width": 390, "height": 844}
NARROW = {"width": 320, "height": 640}
BLOCKING = ("serious", "critical")
MINUS = "\u2212"  # balances are shown with a true minus sign


# The months the funder looks at: this one and the five before it.
MONTHS = 3  # the latest published quarter: funders see whole closed periods only
MEMBERS = (
    "Cleo Marsh",
    "Dev Okafor",
    "Eun Park",
    "Femi Lowe",
    "Gwen Hart",
    "Hana Sato",
    "Ivo Brandt",
    "Jude Kerr",
)
PROFESSIONALS = ("Nia Kaur", "Sam Reyes")
ORGANISATIONS = ("Maple Court Care Home", "Oakfield School")
# The walking group: its leader, and the ten who came on the walk the story records.
WALK_HOST = "Tess Ward"
WALKERS = (
    "Abi Cole",
    "Ben Frost",
    "Cara Dunn",
    "Dan Pike",
    "Ella Voss",
    "Finn Rowe",
    "Gil Moss",
    "Hal Reed",
    "Isla Fox",
    "Joss Lamb",
)
OPENING_MINUTES = 180  # what the member who gives an hour starts with


def month_start(months_back: int, today: date | None = None) -> date:
    today = today or date.today()
    month = today.month - 1 - months_back
    return date(today.year + month // 12, month % 12 + 1, 1)


def published_quarter() -> date:
    """The first day of the latest quarter published to funders now."""
    through = release_at(
        datetime.now(UTC) - timedelta(seconds=Settings().report_settle_seconds),
        timedelta(days=Settings().report_publish_after_days),
    ).through
    end_month, year = through.month - through.month % 3, through.year
    if end_month == 0:
        end_month, year = 12, year - 1
    return date(year, end_month - 2, 1)


@dataclass
class Activity:
    """What the timebank did before the story starts, for the funder's report."""

    start: date
    names: tuple[str, ...]
    exchanges: int
    minutes: int


async def _activity(engine, world: World) -> Activity:
    """Ten more people (members, professionals, organisations) and 42 exchanges over the last
    six months, logged by the coordinator and approved, through the services themselves.
    Each month eight members help one another in pairs (each pair both ways over the half
    year), a professional helps a member, a member helps an organisation and an organisation
    a member: at least ten people are active in every month, in every category and every
    flow, so nothing the funder sees rests on fewer than five. Ada and Bea take no part: the
    story's balances and queue are theirs alone."""
    start = published_quarter()
    participants = Participants(engine)
    members = [
        (await participants.enrol(world.timebank, "member", name, joined_on=start)).id
        for name in MEMBERS
    ]
    earlier = start - timedelta(days=60)
    professionals = [
        (await participants.enrol(world.timebank, "professional", n, joined_on=earlier)).id
        for n in PROFESSIONALS
    ]
    organisations = [
        (await participants.enrol(world.timebank, "organisation", n, joined_on=earlier)).id
        for n in ORGANISATIONS
    ]
    coordinator = TimebankAccess(
        principal=Principal(
            user_id=world.coordinator.user_id,
            email=world.coordinator.email,
            is_admin=False,
            token_id=0,
        ),
        timebank_id=world.timebank.id,
        timebank_slug=world.timebank.slug,
        roles=frozenset({"coordinator"}),
    )
    exchanges = Exchanges(engine)
    pair_help = ("gardening", "household", "befriending")
    today = date.today()
    count = minutes = 0
    for m in range(MONTHS):
        first = month_start(-m, start)
        plan = []
        for j in range(4):
            a, b = members[(m + 2 * j) % 8], members[(m + 2 * j + 1) % 8]
            giver, receiver = (a, b) if (m // 2) % 2 == 0 else (b, a)
            plan.append((giver, receiver, 60, pair_help[m % 3]))
        plan.append((professionals[m % 2], members[(3 * m) % 8], 90, "wellbeing"))
        plan.append((members[(3 * m + 4) % 8], organisations[m % 2], 120, "events"))
        plan.append((organisations[m % 2], members[(3 * m + 1) % 8], 60, "cooking"))
        for n, (giver, receiver, length, category) in enumerate(plan):
            logged = await exchanges.log(
                coordinator,
                ExchangeCreate(
                    giver_id=giver,
                    receiver_id=receiver,
                    minutes=length,
                    service_date=min(first + timedelta(days=1 + 2 * n), today),
                    category=category,
                    description="help from before the story starts",
                ),
            )
            approved = await exchanges.decide(coordinator, logged.exchange.id, "approve")
            assert approved.state == "approved"
            count, minutes = count + 1, minutes + length
    return Activity(
        start=start,
        names=MEMBERS + PROFESSIONALS + ORGANISATIONS,
        exchanges=count,
        minutes=minutes,
    )


@dataclass
class Cast:
    """The people of the later stories, enrolled after the funder's quarter (none of its
    figures are theirs): a walking group's host and its ten walkers (no sign-in: a
    coordinator logs for them), and two members who sign in, the first starting in credit."""

    host_id: int
    walkers: dict[str, int]
    giver: Person
    receiver: Person


async def _cast(engine, world: World) -> Cast:
    participants = Participants(engine)
    host = await participants.enrol(world.timebank, "member", WALK_HOST)
    walkers = {
        name: (await participants.enrol(world.timebank, "member", name)).id for name in WALKERS
    }
    giver = await make_person(engine, "kit", timebank=world.timebank, roles=("member",))
    receiver = await make_person(engine, "lou", timebank=world.timebank, roles=("member",))
    assert giver.participant_id is not None
    await Ledger(engine).set_opening(world.timebank.id, giver.participant_id, OPENING_MINUTES)
    return Cast(host_id=host.id, walkers=walkers, giver=giver, receiver=receiver)


async def _world(database_url: str) -> tuple[World, Activity, Cast]:
    engine = create_async_engine(sqlalchemy_url(database_url))
    try:
        world = await make_world(engine)
        activity = await _activity(engine, world)
        # Funder figures count as of their monthly publication: the half year before the
        # story is made older than it (the service stamps approvals and enrolments with the
        # database's clock and refuses to change them, so the triggers are set aside here).
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            moment = {
                "at": datetime.combine(activity.start, datetime.min.time(), UTC),
                "tb": world.timebank.id,
            }
            await conn.execute(
                text("UPDATE participants SET created_at = :at WHERE timebank_id = :tb"), moment
            )
            await conn.execute(
                text("UPDATE exchanges SET approved_at = :at WHERE timebank_id = :tb"), moment
            )
        return world, activity, await _cast(engine, world)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "the browser tests drive Debian's Chromium: install it with "
            "`apt-get install -y chromium` (Playwright never downloads a browser here)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox"], headless=True
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[tuple[str, World, Activity, Cast]]:
    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        world, activity, cast = pool.submit(asyncio.run, _world(database_url)).result()
    with running_service(database_url) as base_url:
        yield base_url, world, activity, cast


class Phone:
    """One person's phone: a browser context of its own (its own cookies)."""

    def __init__(
        self, browser: Browser, base_url: str, name: str, viewport: dict[str, int] = PHONE
    ) -> None:
        self.context: BrowserContext = browser.new_context(
            base_url=base_url, viewport=viewport, is_mobile=True, has_touch=True, locale="en-GB"
        )
        self.context.set_default_timeout(15_000)
        self.page: Page = self.context.new_page()
        self.name = name

    def sign_in(self, person: Person) -> None:
        page = self.page
        page.goto("/sign-in")
        page.get_by_label("Email").fill(person.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/t/[^/]+$"))

    def check(self, shot: str) -> None:
        """Photograph the page, and fail on any serious or critical accessibility finding."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{shot}.png"), full_page=True)
        if not self.page.evaluate("() => typeof window.axe === 'object'"):
            self.page.evaluate(AXE)
        violations = self.page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                .map(v => ({id: v.id, impact: v.impact, help: v.help,
                            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"""
        )
        blocking = [v for v in violations if v["impact"] in BLOCKING]
        assert not blocking, f"{shot} ({self.page.url}): {blocking}"

    def close(self) -> None:
        self.context.close()


def balance_of(page: Page) -> str:
    return page.locator(".big-number").inner_text()


def assert_fits(page: Page, viewport: dict[str, int]) -> None:
    """Nothing on the page runs off the side: there is nothing to scroll sideways to."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{page.url} is {width} px wide at {viewport['width']} px"


def test_a_member_logs_hours_and_everyone_sees_it_through(chromium, service):
    base_url, world, activity, _ = service
    slug = world.timebank.slug
    ada = Phone(chromium, base_url, "ada")
    bea = Phone(chromium, base_url, "bea")
    coordinator = Phone(chromium, base_url, "coordinator")
    funder = Phone(chromium, base_url, "funder")
    try:
        # Ada signs in and opens the form.
        ada.page.goto("/sign-in")
        ada.check("01-sign-in")
        ada.sign_in(world.member)
        ada.check("02-member-home")
        assert balance_of(ada.page) == "0:00"
        ada.page.get_by_role("link", name="Log hours").first.click()
        expect(ada.page).to_have_url(re.compile(r"/log$"))
        ada.check("03-log-form")

        # A duration the form cannot read comes back beside its field, values kept.
        page = ada.page
        page.get_by_label("I gave help").check()
        page.get_by_label("Who with?").fill("Bea")
        page.get_by_label("How long?").fill("an hour and a bit")
        page.get_by_label("What kind of help?").select_option("gardening")
        page.get_by_label("A short note").fill("Weeded the front garden <b>and</b> the path")
        page.get_by_role("button", name="Record it").click()
        expect(page.locator("#duration-error")).to_be_visible()
        expect(page.get_by_label("Who with?")).to_have_value("Bea")
        ada.check("04-log-form-with-an-error")

        # 1:30, tapped twice.
        page.get_by_label("How long?").fill("1:30")
        key = page.locator("input[name=key]").input_value()
        sent = {
            "csrf_token": page.locator("input[name=csrf_token]").first.input_value(),
            "key": key,
            "direction": "gave",
            "who": "Bea",
            "duration": "1:30",
            "service_date": date.today().isoformat(),
            "category": "gardening",
            "description": "Weeded the front garden <b>and</b> the path",
        }
        page.get_by_role("button", name="Record it").dblclick()
        expect(page).to_have_url(re.compile(r"/exchanges/\d+\?logged="))
        recorded_url = page.url.split("?")[0]
        expect(page.get_by_role("status")).to_contain_text("You gave Bea 1:30")
        expect(page.get_by_role("status")).to_contain_text(
            "waiting for the other person to confirm"
        )
        # The note is shown as typed, not as markup.
        expect(page.locator(".facts")).to_contain_text("<b>and</b>")
        ada.check("05-recorded")

        # A retry after a dropped connection: the same form again answers the same exchange.
        retry = ada.context.request.post(f"{base_url}/t/{slug}/log", form=sent)
        assert retry.ok and retry.url.split("?")[0] == recorded_url

        page.goto(f"/t/{slug}/exchanges")
        items = page.locator(".list .item")
        expect(items).to_have_count(1)
        expect(items.first).to_contain_text("You gave Bea")
        expect(items.first).to_contain_text("waiting for the other person to confirm")
        ada.check("06-my-exchanges")
        page.goto(f"/t/{slug}")
        expect(page.locator(".pending")).to_contain_text("Coming in: +1:30")

        # Bea confirms.
        bea.sign_in(world.other_member)
        expect(bea.page.get_by_text("1 exchange for you to confirm")).to_be_visible()
        bea.page.goto(f"/t/{slug}/exchanges")
        bea.check("07-to-confirm")
        bea.page.get_by_role("button", name=re.compile("^Confirm")).click()
        expect(bea.page.locator(".list .item").first).to_contain_text("waiting for a coordinator")
        bea.page.goto(recorded_url)
        bea.check("08-exchange-detail")

        # The coordinator approves it from the queue.
        coordinator.sign_in(world.coordinator)
        coordinator.check("09-coordinator-home")
        coordinator.page.goto(f"/t/{slug}/queue")
        queue = coordinator.page.locator(".list .item")
        expect(queue).to_have_count(1)
        expect(queue.first).to_contain_text("Ada gave Bea 1:30")
        expect(queue.first).to_contain_text("Why here:")
        coordinator.check("10-approval-queue")
        queue.first.get_by_role("checkbox").check()
        coordinator.page.get_by_role("button", name="Approve ticked").click()
        expect(coordinator.page.get_by_role("status")).to_contain_text("approved")
        expect(coordinator.page.get_by_text("Nothing waiting")).to_be_visible()
        coordinator.check("11-queue-after-approval")
        coordinator.page.goto(f"/t/{slug}/participants")
        expect(coordinator.page.locator("tr", has_text="Ada")).to_contain_text("1:30")
        coordinator.check("12-participants")
        coordinator.page.goto(f"/t/{slug}/participants/new")
        coordinator.check("13-invite")
        coordinator.page.goto(f"/t/{slug}/log?on-behalf=true")
        coordinator.check("14-log-on-behalf")
        coordinator.page.goto(recorded_url)
        expect(coordinator.page.get_by_label("Why reverse it?")).to_be_visible()
        coordinator.check("15-approved-exchange-for-coordinator")

        # Both balances show it.
        ada.page.goto(f"/t/{slug}")
        assert balance_of(ada.page) == "1:30"
        ada.check("16-member-home-after")
        bea.page.goto(f"/t/{slug}")
        assert balance_of(bea.page) == f"{MINUS}1:30"
        bea.check("17-other-member-home-after")

        # The funder opens the report and asks for the latest published quarter: figures,
        # charts, a CSV; nobody's name. Ada's exchange, approved just now, is published with
        # next month's figures, not in these.
        funder.sign_in(world.funder)
        funder.page.get_by_role("link", name="Contribution report").click()
        report = funder.page
        expect(report.get_by_role("heading", level=1)).to_contain_text(
            "What Riverside Timebank adds up to"
        )
        report.get_by_label("From").fill(activity.start.isoformat())
        quarter_end = month_start(-3, activity.start) - timedelta(days=1)
        report.get_by_label("To").fill(quarter_end.isoformat())
        report.get_by_role("button", name="Show").click()
        expect(report).to_have_url(re.compile(rf"from={activity.start.isoformat()}"))
        expect(report.locator(".lead")).to_contain_text(f"From {activity.start:%-d %B %Y}")

        # Enough people took part that the period's hours, exchanges and categories are shown,
        # not withheld (a quarter's few two-way ties and its new people are).
        tiles = report.locator("dl.tiles")
        for tile in ("Hours exchanged", "Exchanges", "Active people"):
            expect(tiles.locator("div", has_text=tile).locator("dd")).not_to_contain_text(
                "withheld"
            )
        exchanges = activity.exchanges
        hours = round(activity.minutes / 60, 2)
        expect(tiles.locator("div", has_text="Exchanges").locator("dd")).to_have_text(
            str(exchanges)
        )
        expect(tiles.locator("div", has_text="Hours exchanged").locator("dd")).to_have_text(
            f"{hours:g}"
        )
        expect(report.locator("table")).not_to_contain_text("withheld")

        # Each chart loads, and draws figures rather than saying there are none to draw.
        images = report.locator("figure.chart img").all()
        assert len(images) == 3
        names = (*activity.names, "Ada", "Bea")
        for image in images:
            image.scroll_into_view_if_needed()
            expect(image).to_have_js_property("complete", True)
            assert image.evaluate("img => img.naturalWidth") > 0
            svg = funder.context.request.get(f"{base_url}{image.get_attribute('src')}")
            assert svg.ok and svg.headers["content-type"].startswith("image/svg+xml")
            text = svg.text()
            assert "Riverside Timebank" in text
            assert "No exchanges in this period" not in text and "Withheld:" not in text
            assert "<path" in text and not any(name in text for name in names)
        body = report.locator("main").inner_text()
        assert not any(name in body for name in names), body
        csv_link = report.get_by_role("link", name="Download the figures (CSV)")
        csv = funder.context.request.get(f"{base_url}{csv_link.get_attribute('href')}")
        assert csv.ok and csv.headers["content-type"].startswith("text/csv")
        assert not any(name in csv.text() for name in names)
        funder.check("18-funder-report")

        # On the narrowest phones (320 px) nothing runs off the side.
        narrow = Phone(chromium, base_url, "narrow", viewport=NARROW)
        narrow.sign_in(world.member)
        for path in (
            f"/t/{slug}",
            f"/t/{slug}/log",
            f"/t/{slug}/exchanges",
            recorded_url,
            f"/t/{slug}/sessions/new",
            f"/t/{slug}/give",
        ):
            narrow.page.goto(path)
            assert_fits(narrow.page, NARROW)
        narrow.page.goto(f"/t/{slug}/log")
        narrow.check("20-log-form-at-320px")
        narrow.close()

        # The invitation page, as someone arriving with a link.
        stranger = Phone(chromium, base_url, "newcomer")
        stranger.page.goto("/invitation?token=not-a-real-token")
        stranger.check("19-accept-invitation")
        stranger.close()
    finally:
        for phone in (ada, bea, coordinator, funder):
            phone.close()


def test_a_coordinator_logs_a_walk_for_ten_and_another_approves_it(chromium, service):
    base_url, world, _, cast = service
    slug = world.timebank.slug
    yesterday = date.today() - timedelta(days=1)
    coordinator = Phone(chromium, base_url, "coordinator")
    staff = Phone(chromium, base_url, "staff")
    try:
        # The coordinator opens the session form from home: it fits the phone's width.
        coordinator.sign_in(world.coordinator)
        page = coordinator.page
        page.get_by_role("link", name="Log a group session", exact=True).click()
        expect(page).to_have_url(re.compile(r"/sessions/new$"))
        assert_fits(page, PHONE)
        coordinator.check("21-session-form")

        # Sent with nobody ticked: nothing is recorded, the fault is beside the list, and what
        # was chosen and typed is kept.
        page.get_by_label("Who ran it?").select_option(label=f"{WALK_HOST} (no. {cast.host_id})")
        page.get_by_label("The host gave it to everyone").check()
        page.get_by_label("How long, for each person?").fill("1:30")
        page.get_by_label("When?").fill(yesterday.isoformat())
        page.get_by_label("What kind of session?").select_option("wellbeing")
        page.get_by_label("A short note").fill("Saturday walk round the reservoir")
        page.get_by_role("button", name="Record the session").click()
        expect(page.get_by_role("alert")).to_contain_text("Nothing was recorded yet")
        expect(page.locator("#attendees-error")).to_contain_text("Tick everyone who came")
        expect(page.get_by_label("Who ran it?")).to_have_value(str(cast.host_id))
        expect(page.get_by_label("How long, for each person?")).to_have_value("1:30")
        assert_fits(page, PHONE)
        coordinator.check("22-session-form-with-an-error")

        # The ten who came are ticked and the session recorded: one duration, ten people.
        for name in WALKERS:
            page.get_by_label(name).check()
        page.get_by_role("button", name="Record the session").click()
        expect(page).to_have_url(re.compile(r"/exchanges/\d+\?logged="))
        session_url = page.url.split("?")[0]
        recorded = page.get_by_role("status")
        expect(recorded).to_contain_text("Recorded")
        expect(recorded).to_contain_text(f"{yesterday:%-d %B %Y}, 10 people with {WALK_HOST}")
        expect(recorded).to_contain_text("15:00 in all")
        expect(recorded).to_contain_text("It is waiting for a coordinator")
        expect(page.locator(".list .item")).to_have_count(10)
        expect(page.locator(".facts")).to_contain_text("Saturday walk round the reservoir")
        coordinator.check("23-session-recorded")

        # Another coordinator, who was not on the walk, finds it in the queue as one entry
        # and approves it.
        staff.sign_in(world.staff)
        staff.page.goto(f"/t/{slug}/queue")
        queue = staff.page.locator(".list .item")
        expect(queue).to_have_count(1)
        expect(queue.first).to_contain_text(
            f"Group session: {WALK_HOST} with 10 people 15:00 in all"
        )
        staff.check("24-queue-with-a-session")
        queue.first.get_by_role("checkbox").check()
        staff.page.get_by_role("button", name="Approve ticked").click()
        expect(staff.page.get_by_role("status")).to_contain_text("approved")
        expect(staff.page.get_by_text("Nothing waiting")).to_be_visible()

        # The session and every leg are approved, and the balances show it: the host earned
        # 15:00, each walker spent 1:30.
        staff.page.goto(session_url)
        expect(staff.page.locator(".facts")).to_contain_text("approved")
        legs = staff.page.locator(".list .item")
        expect(legs).to_have_count(10)
        for leg in legs.all():
            expect(leg.locator(".state")).to_have_text("approved")
        staff.check("25-approved-session")
        staff.page.goto(f"/t/{slug}/participants")
        rows = staff.page.locator("tr")
        expect(rows.filter(has_text=WALK_HOST).locator("td.num").first).to_have_text("15:00")
        for name in WALKERS:
            expect(rows.filter(has_text=name).locator("td.num").first).to_have_text(f"{MINUS}1:30")
        staff.check("26-participants-after-the-session")
    finally:
        for phone in (coordinator, staff):
            phone.close()


def test_a_member_gives_another_an_hour(chromium, service):
    base_url, world, _, cast = service
    slug = world.timebank.slug
    kit = Phone(chromium, base_url, "kit")
    lou = Phone(chromium, base_url, "lou")
    try:
        lou.sign_in(cast.receiver)
        assert balance_of(lou.page) == "0:00"
        kit.sign_in(cast.giver)
        assert balance_of(kit.page) == "3:00"
        page = kit.page
        page.get_by_role("link", name="Give hours").click()
        expect(page).to_have_url(re.compile(r"/give$"))
        assert_fits(page, PHONE)
        kit.check("27-give-form")

        # A duration the form cannot read: nothing is given, the name typed is kept.
        page.get_by_label("A person").check()
        page.get_by_label("Who to?").fill("Lou")
        page.get_by_label("How many hours?").fill("an hour, say")
        page.get_by_label("A note").fill("Thank you for the lifts")
        page.get_by_role("button", name="Give the hours").click()
        expect(page.get_by_role("alert")).to_contain_text("Nothing was given yet")
        expect(page.locator("#duration-error")).to_be_visible()
        expect(page.get_by_label("Who to?")).to_have_value("Lou")
        assert_fits(page, PHONE)
        kit.check("28-give-form-with-an-error")

        page.get_by_label("How many hours?").fill("1")
        page.get_by_role("button", name="Give the hours").click()
        expect(page).to_have_url(re.compile(rf"/t/{slug}\?given="))
        expect(page.get_by_role("status")).to_contain_text("The hours have gone")
        assert balance_of(page) == "2:00"
        kit.check("29-member-home-after-giving")

        # Nobody approves a gift: Lou has the hour at once.
        lou.page.reload()
        assert balance_of(lou.page) == "1:00"
        expect(lou.page.get_by_text("Nothing waiting to be approved")).to_be_visible()
    finally:
        for phone in (kit, lou):
            phone.close()


def test_a_coordinator_imports_people_from_a_file(chromium, service):
    base_url, world, _, _ = service
    slug = world.timebank.slug
    coordinator = Phone(chromium, base_url, "coordinator")
    header = "name,kind,email,opening_balance,external_id\n"
    try:
        coordinator.sign_in(world.coordinator)
        page = coordinator.page
        page.get_by_role("link", name="Import people or history").click()
        expect(page).to_have_url(re.compile(rf"/t/{slug}/imports$"))
        assert_fits(page, PHONE)
        coordinator.check("30-import-form")

        # One bad row (line 3: an opening balance that does not read): nothing is imported,
        # and the reason stands beside its line.
        bad = header + "Rosa Quint,member,,1:30,R1\nSol Varga,member,,an hour,R2\n"
        page.get_by_label("People").check()
        page.get_by_label("CSV file").set_input_files(
            {"name": "people.csv", "mimeType": "text/csv", "buffer": bad.encode()}
        )
        page.get_by_role("button", name="Check the file").click()
        expect(page.get_by_role("alert")).to_contain_text("Nothing was imported")
        line = page.locator("#line-3")
        expect(line).to_contain_text("opening_balance")
        expect(line).to_contain_text("bad duration")
        assert_fits(page, PHONE)
        coordinator.check("31-import-check-with-a-bad-row")

        # The file corrected: the check says what importing it would do; confirming does it.
        good = header + "Rosa Quint,member,,1:30,R1\nSol Varga,member,,-0:45,R2\n"
        page.get_by_label("CSV file").set_input_files(
            {"name": "people.csv", "mimeType": "text/csv", "buffer": good.encode()}
        )
        page.get_by_role("button", name="Check the file").click()
        expect(page.locator("#check-summary")).to_contain_text("2 to import")
        coordinator.check("32-import-check-good")
        page.get_by_role("button", name="Import 2 rows").click()
        expect(page.get_by_role("status")).to_contain_text("Imported: 2 rows added")
        coordinator.check("33-import-done")

        page.goto(f"/t/{slug}/participants")
        expect(page.get_by_text("Rosa Quint")).to_be_visible()
        expect(page.get_by_text("Sol Varga")).to_be_visible()
    finally:
        coordinator.close()
