"""Sign-in, sessions, passwords and tokens under attack: login CSRF, spoofed client addresses,
parallel guessing, lockouts imposed by strangers, sign-in floods, and what is kept of tries."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest
import uvicorn
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from tests.live import free_port
from tests.people import PASSWORD, make_person
from tests.web.pages import csrf_token, hidden_fields, submit
from timebank.app import create_app
from timebank.auth import secrets as password_secrets
from timebank.auth import throttle
from timebank.cli import proxy_options
from timebank.settings import Settings

LOGIN = "/api/v1/auth/login"
EVIL = "https://evil.example"


def _address() -> str:
    """A client address of a test's own (through a trusted proxy), so that counts from other
    tests on the same database never meet its own."""
    return f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(256)}"


def _settings(**overrides) -> Settings:
    return Settings(cookie_secure=False, report_settle_seconds=0, **overrides)


@contextlib.asynccontextmanager
async def _client(database_url: str, **overrides) -> AsyncIterator[AsyncTestClient]:
    app = create_app(_settings(**overrides), database_url=database_url)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@contextlib.contextmanager
def _served(database_url: str, settings: Settings, apps: list | None = None) -> Iterator[str]:
    """The app under uvicorn on a local port (in a thread: requests really run side by side),
    with the proxy options `timebank serve` uses; the app is appended to ``apps``."""
    port = free_port()
    app = create_app(settings, database_url=database_url)
    if apps is not None:
        apps.append(app)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            **proxy_options(settings),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


# --- 4. Login CSRF ------------------------------------------------------------------------------


async def test_a_cross_site_text_plain_form_cannot_sign_anyone_in(client, engine):
    """<form enctype="text/plain"> posts `{"email": …, "password": …}` as text/plain."""
    attacker = await make_person(engine, "mallory")
    body = json.dumps({"email": attacker.email, "password": PASSWORD})
    for headers in ({"content-type": "text/plain"}, {"content-type": "text/plain", "origin": EVIL}):
        forged = await client.post(LOGIN, content=body, headers=headers)
        assert forged.status_code in (403, 415), forged.text
        assert forged.headers["content-type"].startswith("application/problem+json")
        assert "set-cookie" not in forged.headers
    plain = await client.post(LOGIN, content=body, headers={"content-type": "text/plain"})
    assert plain.status_code == 415 and plain.json()["type"].endswith("/unsupported-media-type")
    accept = await client.post(
        "/api/v1/auth/invitations/accept",
        content=json.dumps({"token": "x" * 40, "password": "a long password"}),
        headers={"content-type": "text/plain"},
    )
    assert accept.status_code == 415 and "set-cookie" not in accept.headers
    assert (await client.get("/api/v1/auth/me")).status_code == 401  # nobody signed in


async def test_a_cross_site_write_carrying_the_session_cookie_is_refused(client, engine):
    person = await make_person(engine, "victim")
    await client.post(LOGIN, json={"email": person.email, "password": PASSWORD})
    for headers in ({"origin": EVIL}, {"sec-fetch-site": "cross-site"}, {"origin": "null"}):
        forged = await client.post("/api/v1/auth/tokens", json={"name": "evil"}, headers=headers)
        assert forged.status_code == 403, forged.text
    # The same sign-in from another site is refused too (it would set the cookie).
    cross_login = await client.post(
        LOGIN, json={"email": person.email, "password": PASSWORD}, headers={"origin": EVIL}
    )
    assert cross_login.status_code == 403 and "set-cookie" not in cross_login.headers
    names = [t["name"] for t in (await client.get("/api/v1/auth/tokens")).json()]
    assert "evil" not in names
    # The service's own pages (same origin) and bearer clients keep working.
    same = await client.post(
        "/api/v1/auth/tokens",
        json={"name": "mine"},
        headers={"origin": str(client.base_url).rstrip("/"), "sec-fetch-site": "same-origin"},
    )
    assert same.status_code == 201, same.text
    client.cookies.clear()
    script = await client.post(
        "/api/v1/auth/tokens", json={"name": "script"}, headers=person.headers
    )
    assert script.status_code == 201


# --- 5. Throttling ------------------------------------------------------------------------------


def test_x_forwarded_for_is_believed_only_from_trusted_proxies(database_url):
    """From loopback, a caller naming a new address in X-Forwarded-For for each guess used to
    escape the per-client count."""

    def five_guesses(settings: Settings, network: str) -> list[int]:
        with _served(database_url, settings) as base:
            return [
                httpx.post(
                    f"{base}{LOGIN}",
                    json={"email": f"nobody{i}@example.org", "password": "not a password"},
                    headers={"x-forwarded-for": f"{network}.{i}"},
                    timeout=30,
                ).status_code
                for i in range(5)
            ]

    answers = five_guesses(_settings(login_max_failures_per_client=3), "198.51.100")
    assert answers[:3] == [401, 401, 401] and answers[3:] == [429, 429]
    trusting = _settings(login_max_failures_per_client=3, trusted_proxies="127.0.0.1")
    behind_proxy = five_guesses(trusting, "203.0.113")
    assert behind_proxy == [401] * 5  # five clients, each within its own count


def test_serve_trusts_no_proxy_unless_told():
    assert proxy_options(Settings()) == {"proxy_headers": False, "forwarded_allow_ips": []}
    told = proxy_options(Settings(trusted_proxies="10.0.0.0/8, 192.0.2.7"))
    assert told == {"proxy_headers": True, "forwarded_allow_ips": ["10.0.0.0/8", "192.0.2.7"]}
    with pytest.raises(ValueError):
        Settings(trusted_proxies="10.0.0.300")


async def test_parallel_guesses_from_one_client_cannot_pass_its_limit(database_url):
    settings = _settings(login_max_failures_per_client=4, trusted_proxies="127.0.0.1")
    with _served(database_url, settings) as base:
        async with httpx.AsyncClient(
            base_url=base, timeout=60, headers={"x-forwarded-for": _address()}
        ) as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        LOGIN, json={"email": f"guess{i}@example.org", "password": "a wrong guess"}
                    )
                    for i in range(16)
                )
            )
    statuses = sorted(a.status_code for a in answers)
    # Exactly four are checked; the rest wait out a delay (429) or, beyond what the service
    # checks at once, are turned away before they are counted (503).
    assert statuses.count(401) == 4 and statuses.count(429) + statuses.count(503) == 12, [
        a.text[:300] for a in answers if a.status_code != 429
    ]


async def test_strangers_guessing_cannot_lock_the_owner_out(database_url, engine):
    """Five wrong guesses used to lock any account, the admin's included, for 15 minutes."""
    owner = await make_person(engine, "owner", is_admin=True)
    settings = _settings(login_max_failures_per_account=2, trusted_proxies="127.0.0.1")

    def login(password: str, address: str) -> httpx.Response:
        return httpx.post(
            f"{base}{LOGIN}",
            json={"email": owner.email, "password": password},
            headers={"x-forwarded-for": address},
            timeout=30,
        )

    with _served(database_url, settings) as base:
        assert login(PASSWORD, "192.0.2.1").status_code == 200  # the owner's usual address
        for n in range(4):  # 4 addresses x 2 free guesses: the account-wide 8
            for _ in range(2):
                assert login("a wrong guess", f"198.51.100.{n}").status_code == 401
        again = login("another guess", "198.51.100.9")
        assert again.status_code == 429 and int(again.headers["retry-after"]) > 0
        assert login(PASSWORD, "192.0.2.1").status_code == 200
        elsewhere = login(PASSWORD, "192.0.2.99")  # a new address: briefly slowed at most
        assert elsewhere.status_code == 429
        assert 0 < int(elsewhere.headers["retry-after"]) <= 30
        assert elsewhere.json()["type"].endswith("/rate-limited")


async def test_sign_in_keeps_no_email_or_address_and_bounded_rows(database_url, raw):
    assert await raw.fetchval("SELECT to_regclass('login_attempts')") is None
    before = await raw.fetchval("SELECT count(*) FROM sign_in_counters")
    address = _address()  # its own, so that no other test's count delays these tries
    settings = _settings(login_max_failures_per_client=3, trusted_proxies="127.0.0.1")
    with _served(database_url, settings) as base:
        async with httpx.AsyncClient(
            base_url=base, timeout=60, headers={"x-forwarded-for": address}
        ) as client:
            for i in range(12):
                await client.post(
                    LOGIN, json={"email": f"stranger{i}@example.org", "password": "a wrong guess"}
                )
    try:
        after = await raw.fetchval("SELECT count(*) FROM sign_in_counters")
        assert after - before <= 1 + 3 * 2  # the client, and two keys per counted guess
        # Keyed under the database's own secret: a guessed email hashes to nothing stored.
        secret = await raw.fetchval("SELECT key FROM sign_in_key")
        stored = {
            bytes(k) for k in await raw.fetchval("SELECT array_agg(key) FROM sign_in_counters")
        }
        email = "stranger0@example.org"
        assert throttle.keys(secret, email, address)[2] in stored
        assert throttle.keys(secret, email, address)[0] in stored
        assert hashlib.sha256(email.encode()).digest() not in stored
    finally:
        await raw.execute("UPDATE sign_in_counters SET expires_at = now() - interval '1 second'")
    # Each try forgets up to 100 expired counters (other tests' too), so a few tries clear them.
    expired = "SELECT count(*) FROM sign_in_counters WHERE expires_at < now()"
    async with _client(database_url) as client:
        for _ in range(await raw.fetchval(expired) // 100 + 1):
            left = await raw.fetchval(expired)
            await client.post(
                LOGIN, json={"email": "late@example.org", "password": "a wrong guess"}
            )
            assert await raw.fetchval(expired) == max(0, left - 100)
    assert await raw.fetchval(expired) == 0


# --- 6. Hashing off the event loop ---------------------------------------------------------------


async def test_sign_ins_hold_no_connection_while_hashing_and_refuse_beyond_capacity(
    database_url, engine, raw, monkeypatch
):
    person = await make_person(engine, "busy")
    release = threading.Event()

    def slow_verify(password_hash, password):  # stands in for argon2 taking its time
        release.wait(60)
        return False

    monkeypatch.setattr(password_secrets, "verify_password", slow_verify)
    apps: list = []
    with _served(database_url, _settings(trusted_proxies="127.0.0.1"), apps) as base:
        app = apps[0]
        passwords = app.state.auth.passwords
        async with httpx.AsyncClient(
            base_url=base, timeout=60, headers={"x-forwarded-for": _address()}
        ) as client:
            tries = [
                asyncio.create_task(
                    client.post(LOGIN, json={"email": f"n{i}@example.org", "password": "guess 1"})
                )
                for i in range(passwords.capacity)
            ]
            for _ in range(3000):  # until every try is waiting on its hash, past its reads
                pool = app.state.engine.pool
                if passwords.in_flight == passwords.capacity and pool.checkedout() == 0:
                    break
                await asyncio.sleep(0.01)
            try:
                # Every hashing slot is taken: the service still answers, at once, and holds no
                # database connection for the sign-ins waiting on their hash.
                assert passwords.in_flight == passwords.capacity, [
                    t.result().text[:200] for t in tries if t.done()
                ]
                assert app.state.engine.pool.checkedout() == 0
                assert (await client.get("/health")).status_code == 200
                me = await client.get("/api/v1/auth/me", headers=person.headers)
                assert me.status_code == 200
                counted = await raw.fetchval("SELECT count(*) FROM sign_in_counters")
                extra = await client.post(
                    LOGIN, json={"email": person.email, "password": "one more guess"}
                )
                assert extra.status_code == 503 and "retry-after" in extra.headers
                # Refused before it read or wrote anything: a flood of sign-ins takes no
                # database connection from the requests behind it.
                assert await raw.fetchval("SELECT count(*) FROM sign_in_counters") == counted
                idle_in_transaction = await raw.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
                    " AND datname = current_database()"
                )
                assert idle_in_transaction == 0
            finally:
                release.set()
            answers = await asyncio.gather(*tries)
    assert [a.status_code for a in answers] == [401] * len(tries)


# --- 11. The session cookie ---------------------------------------------------------------------


async def test_the_session_cookie_lasts_the_session_not_until_2083(client, engine):
    person = await make_person(engine, "kim")
    response = await client.post(LOGIN, json={"email": person.email, "password": PASSWORD})
    attributes = {
        part.split("=", 1)[0].strip().lower(): part.partition("=")[2].strip()
        for part in response.headers["set-cookie"].split(";")
    }
    days = _settings().session_days
    assert abs(int(attributes["max-age"]) - days * 86400) <= 60
    expires = parsedate_to_datetime(attributes["expires"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=days))) < timedelta(minutes=5)


# --- 15. Passwords, sessions, tokens, headers ---------------------------------------------------


async def test_password_change_needs_the_current_one_and_ends_other_sessions(client, engine):
    person = await make_person(engine, "lou")
    other = await client.post(LOGIN, json={"email": person.email, "password": PASSWORD})
    this = await client.post(LOGIN, json={"email": person.email, "password": PASSWORD})
    other_headers = {"Authorization": f"Bearer {other.json()['token']}"}
    this_headers = {"Authorization": f"Bearer {this.json()['token']}"}
    client.cookies.clear()

    async def change(current: str, new: str) -> httpx.Response:
        return await client.post(
            "/api/v1/auth/password",
            json={"current_password": current, "new_password": new},
            headers=this_headers,
        )

    assert (await change("not my password", "a brand new one 7")).status_code == 422
    for weak in ("password123", "1234567890", person.email, person.email.split("@")[0] + "1"):
        refused = await change(PASSWORD, weak)
        assert refused.status_code == 422, weak
        assert refused.json()["errors"][0]["key"] == "new_password"
    assert (await change(PASSWORD, "a brand new one 7")).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=other_headers)).status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=this_headers)).status_code == 200
    # An API token made before goes too: it may have been made with the leaked password.
    assert (await client.get("/api/v1/auth/me", headers=person.headers)).status_code == 401
    old = await client.post(LOGIN, json={"email": person.email, "password": PASSWORD})
    assert old.status_code == 401
    new = await client.post(LOGIN, json={"email": person.email, "password": "a brand new one 7"})
    assert new.status_code == 200


async def test_sign_out_everywhere_ends_every_session_and_token(client, engine):
    person = await make_person(engine, "max")
    signed_in = await client.post(LOGIN, json={"email": person.email, "password": PASSWORD})
    session = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    ended = await client.post("/api/v1/auth/sign-out-everywhere", headers=person.headers)
    assert ended.status_code == 204
    for headers in (session, person.headers):
        assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401
    assert (await client.get("/api/v1/auth/me")).status_code == 401  # the cookie too


async def test_an_admin_issued_reset_sets_a_new_password_once_and_ends_every_session(
    database_url, engine
):
    person = await make_person(engine, "ned")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env.update(TIMEBANK_DATABASE_URL=database_url, TIMEBANK_PUBLIC_URL="https://tb.example.org")
    command = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "timebank.cli", "admin", "reset-password", "--email", person.email],
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    printed = (await asyncio.wait_for(command.communicate(), 120))[0].decode()
    assert command.returncode == 0
    link = printed.splitlines()[0]
    assert link.startswith("https://tb.example.org/reset-password?token=")
    secret = link.partition("token=")[2]
    assert person.email not in printed

    async with _client(database_url) as client:
        page = await client.get(f"/reset-password?token={secret}")
        assert page.status_code == 200 and hidden_fields(page.text)["token"] == secret
        weak = await submit(
            client,
            "/reset-password",
            {"token": secret, "password": "qwertyuiop", "password_again": "qwertyuiop"},
        )
        assert weak.status_code == 422
        reset = await client.post(
            "/api/v1/auth/password-reset",
            json={"token": secret, "password": "chosen again 42"},
        )
        assert reset.status_code == 204, reset.text
        me = await client.get("/api/v1/auth/me", headers=person.headers)
        assert me.status_code == 401
        again = await client.post(
            "/api/v1/auth/password-reset", json={"token": secret, "password": "mine now 1234"}
        )
        assert again.status_code == 404
        login = await client.post(
            LOGIN, json={"email": person.email, "password": "chosen again 42"}
        )
        assert login.status_code == 200


async def test_api_tokens_always_expire_within_the_maximum(client, engine):
    person = await make_person(engine, "ola")
    signed_in = await client.post(LOGIN, json={"email": person.email, "password": PASSWORD})
    client.cookies.clear()
    session = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    # Made with an API token (this one ends in a day), a token never outlives it.
    made_by_token = await client.post(
        "/api/v1/auth/tokens",
        json={"name": "renewal", "expires_in_days": 365},
        headers=person.headers,
    )
    assert made_by_token.status_code == 201, made_by_token.text
    ends = datetime.fromisoformat(made_by_token.json()["expires_at"])
    assert ends <= datetime.now(UTC) + timedelta(days=1)
    default = await client.post("/api/v1/auth/tokens", json={"name": "default"}, headers=session)
    expires = datetime.fromisoformat(default.json()["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=5)
    week = await client.post(
        "/api/v1/auth/tokens", json={"name": "week", "expires_in_days": 7}, headers=session
    )
    assert datetime.fromisoformat(week.json()["expires_at"]) < datetime.now(UTC) + timedelta(8)
    for days in (0, 366, 10**9):
        body = {"name": "forever", "expires_in_days": days}
        refused = await client.post("/api/v1/auth/tokens", json=body, headers=session)
        assert refused.status_code == 422, days
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": week.json()["id"]},
        )
    used = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {week.json()['token']}"}
    )
    assert used.status_code == 401
    async with engine.connect() as conn:
        unlimited = await conn.execute(
            text("SELECT count(*) FROM api_tokens WHERE expires_at IS NULL")
        )
        assert unlimited.scalar_one() == 0


async def test_every_api_answer_is_unsniffable_and_unstored(client, engine):
    person = await make_person(engine, "pat")
    for response in (
        await client.get("/api/v1/auth/me", headers=person.headers),
        await client.get("/api/v1/auth/me"),
        await client.post(LOGIN, json={"email": person.email, "password": "wrong password"}),
        await client.get("/api/v1/nothing-here"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"


# --- Odd input on these routes ------------------------------------------------------------------


async def test_odd_input_on_sign_in_routes_is_refused_clearly(client, engine):
    person = await make_person(engine, "quin")
    deep = "[" * 100_000 + "]" * 100_000
    odd = [
        await client.post(LOGIN, json={"email": "a\x00@example.org", "password": "x"}),
        await client.post(LOGIN, json={"email": person.email, "password": "pass\x00word1"}),
        await client.post(LOGIN, content=deep, headers={"content-type": "application/json"}),
        await client.post(
            LOGIN,
            content=b"{" + b" " * (11 * 2**20) + b"}",
            headers={"content-type": "application/json"},
        ),
        await client.post("/api/v1/auth/tokens", json={"name": "a\x00b"}, headers=person.headers),
        await client.post(
            "/api/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": "nul\x00password"},
            headers=person.headers,
        ),
        await client.post(
            "/api/v1/auth/password-reset", json={"token": "\x00" * 20, "password": "x" * 12}
        ),
        await client.post(
            LOGIN,
            json={"email": person.email, "password": PASSWORD},
            headers={"origin": "https://évil.example".encode()},
        ),
    ]
    statuses = [r.status_code for r in odd]
    assert all(400 <= s < 500 for s in statuses), statuses
    client.cookies.clear()
    odd_cookie = {"cookie": "timebank_session=café".encode()}
    assert (await client.get("/api/v1/auth/me", headers=odd_cookie)).status_code == 401


async def test_the_sign_in_page_says_how_long_to_wait(client, engine):
    person = await make_person(engine, "ray")
    await csrf_token(client)
    for _ in range(5):
        await submit(client, "/sign-in", {"email": person.email, "password": "wrong guess"})
    paused = await submit(client, "/sign-in", {"email": person.email, "password": PASSWORD})
    assert paused.status_code == 429 and int(paused.headers["retry-after"]) > 0
    assert "Wait" in paused.text and "<form" in paused.text
