"""The API docs page (/schema): it loads only the service's own, pinned copy of its viewer, under
a Content-Security-Policy that lets no other script run; in a real browser it shows the
operations, every request it makes goes to the service itself, and the policy blocks nothing
the viewer needs (so it needs no inline script and no eval). ``TIMEBANK_API_DOCS=false`` turns
the page off and keeps the document."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from litestar.testing import AsyncTestClient
from playwright.sync_api import sync_playwright

from tests.live import running_service
from timebank.app import create_app
from timebank.openapi import DOCS_SCRIPT, RAPIDOC
from timebank.settings import Settings

VENDOR = Path(__file__).parents[2] / "timebank" / "web" / "static" / "vendor" / RAPIDOC
PINNED_SHA256 = "affbd173a65e870e18f392cca963113bcdafb6e50e88cd2f6a834a65b22db94d"
_SOURCES = re.compile(r"""(?:src|href|spec-url)=["']([^"']*)["']""")


def _directives(policy: str) -> dict[str, set[str]]:
    parts = (directive.split() for directive in policy.split(";") if directive.strip())
    return {name: set(values) for name, *values in parts}


async def test_the_docs_page_references_no_other_origin_and_carries_a_strict_policy(client):
    page = await client.get("/schema")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # Every address in the page is a path on this service (no scheme, no host).
    addresses = _SOURCES.findall(page.text)
    assert DOCS_SCRIPT in addresses
    assert all(a.startswith("/") and not a.startswith("//") for a in addresses if a != "data:,")
    assert "://" not in page.text and "cdn" not in page.text.lower()
    assert re.findall(r"<script[^>]*>", page.text) == [f'<script src="{DOCS_SCRIPT}">']
    policy = _directives(page.headers["content-security-policy"])
    assert policy["script-src"] == {"'self'"}  # no inline script, no eval, no other origin
    assert policy["default-src"] == {"'none'"}
    assert policy["frame-ancestors"] == {"'none'"}
    assert all("http" not in value for values in policy.values() for value in values)


async def test_the_docs_script_is_the_pinned_vendored_build_served_by_the_service(client):
    script = await client.get(DOCS_SCRIPT)

    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert hashlib.sha256(script.content).hexdigest() == PINNED_SHA256
    # The same for everyone, so kept by the browser (a page, by contrast, is never stored).
    assert script.headers["cache-control"] == "max-age=3600"
    assert (await client.get("/static/site.css")).headers["cache-control"] == "max-age=3600"
    assert (VENDOR / "LICENSE.txt").read_text().startswith("MIT License")
    assert RAPIDOC.rsplit("-", 1)[1] in (VENDOR / "README.md").read_text()


async def test_docs_page_off_keeps_the_document(database_url):
    app = create_app(Settings(cookie_secure=False, api_docs=False), database_url=database_url)
    async with AsyncTestClient(app=app) as client:
        page = await client.get("/schema")
        document = await client.get("/schema/openapi.json")

    assert "text/html" not in page.headers["content-type"]
    assert DOCS_SCRIPT not in page.text
    assert document.status_code == 200
    assert document.json()["info"]["title"] == "Timebank"


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[str]:
    with running_service(database_url) as base_url:
        yield base_url


def test_in_a_browser_the_docs_show_the_api_and_reach_only_the_service(service):
    base_url = service
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("the browser tests drive Debian's Chromium: `apt-get install -y chromium`")
    requested: list[str] = []
    console: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox"], headless=True
        )
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.goto(f"{base_url}/schema")
            page.get_by_text("/api/v1/auth/login").first.wait_for(timeout=20_000)
        finally:
            browser.close()

    origin = urlsplit(base_url).netloc
    assert f"{base_url}{DOCS_SCRIPT}" in requested
    assert [url for url in requested if urlsplit(url).netloc != origin] == []
    assert [line for line in console if "Content Security Policy" in line] == []
    assert [line for line in console if line.startswith("error")] == []
