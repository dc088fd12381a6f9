"""A member's statement on paper, for those who get it by post: Debian's Chromium, headless,
driven by Playwright against the service on a socket (as tests/web/test_browser.py), shows
the statement page as print media. Navigation, forms and buttons are gone; the timebank, the
person, the period, every line and the totals are there in black on white, no row may be cut
across two pages; and the page makes a PDF."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import create_async_engine

from tests.live import running_service
from tests.people import PASSWORD, World, make_world
from tests.web.test_browser import AXE, BLOCKING, SCREENSHOTS
from tests.web.test_browser import chromium as chromium  # the same browser, launched once
from timebank.auth.schemas import Principal, TimebankAccess
from timebank.db.engine import sqlalchemy_url
from timebank.exchanges.schemas import ExchangeCreate
from timebank.exchanges.service import Exchanges
from timebank.participants.schemas import ParticipantUpdate
from timebank.participants.service import Participants

WHAT = ("Dug the vegetable beds", "Lift to the surgery", "Read the post aloud")
ADDRESS = "3 Mill Lane\nLower Hambleton"


async def _world(database_url: str) -> World:
    """Ada with three exchanges with Bea, approved, and a postal address to send them to."""
    from datetime import date, timedelta

    engine = create_async_engine(sqlalchemy_url(database_url))
    try:
        world = await make_world(engine)
        admin = Principal(user_id=world.admin.user_id, email="", is_admin=True, token_id=0)
        access = TimebankAccess(
            principal=admin, timebank_id=world.timebank.id, timebank_slug=world.timebank.slug
        )
        exchanges = Exchanges(engine)
        for n, description in enumerate(WHAT):
            giver, receiver = (world.member, world.other_member)[:: 1 if n % 2 == 0 else -1]
            assert giver.participant_id and receiver.participant_id
            logged = await exchanges.log(
                access,
                ExchangeCreate(
                    giver_id=giver.participant_id,
                    receiver_id=receiver.participant_id,
                    minutes=30 + 15 * n,
                    service_date=date.today() - timedelta(days=1),
                    category="gardening",
                    description=description,
                ),
            )
            if logged.exchange.state != "approved":
                await exchanges.decide(access, logged.exchange.id, "approve", None)
        assert world.member.participant_id is not None
        await Participants(engine).update_details(
            access,
            world.member.participant_id,
            ParticipantUpdate(postal_address=ADDRESS, contact_preference="post"),
        )
        return world
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[tuple[str, World]]:
    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        world = pool.submit(asyncio.run, _world(database_url)).result()
    with running_service(database_url) as base_url:
        yield base_url, world


def assert_accessible(page: Page) -> None:
    """No serious or critical axe-core finding on the page as shown."""
    page.evaluate(AXE)
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map(v => ({id: v.id, impact: v.impact,
                        nodes: v.nodes.map(n => n.target.join(' '))}))"""
    )
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, f"{page.url}: {blocking}"


def test_a_statement_prints_cleanly_and_makes_a_pdf(chromium: Browser, service) -> None:
    base_url, world = service
    context = chromium.new_context(base_url=base_url, locale="en-GB")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto("/sign-in")
        page.get_by_label("Email").fill(world.coordinator.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/t/[^/]+$"))
        page.goto(f"/t/{world.timebank.slug}/participants/{world.member.participant_id}/statement")
        # On screen: the navigation and the period's form are there, the address is not.
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        expect(page.get_by_role("button", name="Show this period")).to_be_visible()
        expect(page.locator(".statement-to")).to_be_hidden()

        page.emulate_media(media="print")
        expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
        for form in page.locator("form").all():
            expect(form).to_be_hidden()
        for button in page.get_by_role("button").all():
            expect(button).to_be_hidden()
        expect(page.locator("header.top")).to_be_hidden()
        expect(page.locator(".statement-bank")).to_have_text("Riverside Timebank")
        expect(page.locator(".statement-bank")).to_be_visible()
        expect(page.get_by_role("heading", name="Statement for Ada")).to_be_visible()
        expect(page.locator(".statement-period")).to_contain_text("From ")
        expect(page.locator(".statement-to")).to_be_visible()
        expect(page.locator(".statement-to")).to_contain_text("3 Mill Lane")
        rows = page.locator(".statement-lines tbody tr")
        expect(rows).to_have_count(len(WHAT))
        for description in WHAT:
            expect(page.get_by_role("cell", name=re.compile(description))).to_be_visible()
        totals = page.locator(".statement-lines tfoot tr")
        expect(totals).to_be_visible()
        expect(totals).to_contain_text("Totals for the period")
        looks = page.evaluate(
            """() => {
                const style = (el) => getComputedStyle(el);
                const row = document.querySelector('.statement-lines tbody tr');
                return {
                    body: [style(document.body).color, style(document.body).backgroundColor],
                    cell: [style(row.cells[1]).color, style(row.cells[1]).backgroundColor],
                    rowBreak: style(row).breakInside,
                    wrapOverflow: style(document.querySelector('.table-wrap')).overflowX,
                };
            }"""
        )
        black, white = "rgb(0, 0, 0)", "rgb(255, 255, 255)"
        assert looks["body"] == [black, white], looks
        assert looks["cell"] == [black, white], looks
        assert looks["rowBreak"] == "avoid", looks
        assert looks["wrapOverflow"] == "visible", looks

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "statement-print.png"), full_page=True)
        pdf = page.pdf(format="A4", print_background=False)
        assert pdf.startswith(b"%PDF-") and len(pdf) > 1000
    finally:
        context.close()
