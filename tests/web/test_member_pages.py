"""The member's pages over HTTP: sign in, home and balance, log hours once however often the
form is sent, errors shown beside their field, confirming what the other party logged."""

from __future__ import annotations

from datetime import date

from tests.people import PASSWORD, World, make_person
from tests.web.pages import as_person, csrf_token, hidden_fields, sign_in, submit, text_of
from timebank.auth.deps import SESSION_COOKIE


def log_fields(world: World, **changes: str) -> dict[str, str]:
    return {
        "direction": "gave",
        "who": "Bea",
        "duration": "1:30",
        "service_date": date.today().isoformat(),
        "category": "gardening",
        "description": "Weeded the front garden",
        **changes,
    }


async def test_sign_in_lands_on_home_with_balance_and_a_log_button(client, world: World):
    response = await sign_in(client, world.member)
    assert response.status_code == 200
    assert response.url.path == f"/t/{world.timebank.slug}"
    text = text_of(response.text)
    assert "My balance" in text and "0:00" in text
    assert 'href="/t/' + world.timebank.slug + '/log"' in response.text


async def test_a_wrong_password_says_so_and_keeps_the_email(client, world: World):
    response = await submit(client, "/sign-in", {"email": world.member.email, "password": "not it"})
    assert response.status_code == 401
    assert "do not match" in response.text
    assert f'value="{world.member.email}"' in response.text
    assert SESSION_COOKIE not in client.cookies


async def test_pages_need_a_sign_in(client, world: World):
    response = await client.get(f"/t/{world.timebank.slug}/log", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/sign-in?next=%2Ft%2F{world.timebank.slug}%2Flog"


async def test_logging_twice_with_the_same_form_records_one_exchange(client, world: World):
    await sign_in(client, world.member)
    form = await client.get(f"/t/{world.timebank.slug}/log")
    key = hidden_fields(form.text)["key"]
    fields = {"key": key, **log_fields(world)}
    first = await submit(client, f"/t/{world.timebank.slug}/log", fields)
    again = await submit(client, f"/t/{world.timebank.slug}/log", fields)
    assert first.status_code == again.status_code == 200
    assert first.url == again.url  # the same exchange, shown again
    text = text_of(first.text)
    assert "Recorded" in text and "You gave Bea 1:30 (1 hour 30 minutes)" in text
    assert "waiting for the other person to confirm" in text
    mine = await client.get(f"/t/{world.timebank.slug}/exchanges")
    assert text_of(mine.text).count("You gave Bea") == 1
    home = await client.get(f"/t/{world.timebank.slug}")
    assert "Going out" not in home.text and "Coming in: +1:30" in text_of(home.text)


async def test_errors_come_back_beside_their_field_with_what_was_typed(client, world: World):
    await sign_in(client, world.member)
    fields = log_fields(world, who="Nobody Atall", duration="an hour or so", category="")
    fields["description"] = "<script>alert(1)</script>"
    response = await submit(client, f"/t/{world.timebank.slug}/log", fields)
    assert response.status_code == 422
    assert 'id="who-error"' in response.text and "Nobody called" in response.text
    assert 'id="duration-error"' in response.text
    assert 'id="category-error"' in response.text
    assert 'value="an hour or so"' in response.text
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


async def test_a_good_duration_is_echoed_when_another_field_is_wrong(client, world: World):
    await sign_in(client, world.member)
    response = await submit(
        client, f"/t/{world.timebank.slug}/log", log_fields(world, duration="90 min", who="")
    )
    assert response.status_code == 422
    assert "Understood as 1:30 (1 hour 30 minutes)" in text_of(response.text)


async def test_over_the_limit_is_said_at_the_duration(client, world: World):
    await sign_in(client, world.member)
    response = await submit(
        client, f"/t/{world.timebank.slug}/log", log_fields(world, duration="11:59")
    )
    assert response.status_code == 409
    assert 'id="duration-error"' in response.text and "limits" in response.text


async def test_the_other_member_confirms(client, world: World):
    await sign_in(client, world.member)
    logged = await submit(client, f"/t/{world.timebank.slug}/log", log_fields(world))
    exchange_path = logged.url.path
    await sign_in(client, world.other_member)
    mine = await client.get(f"/t/{world.timebank.slug}/exchanges")
    assert "For you to confirm" in mine.text
    confirmed = await submit(
        client, f"{exchange_path}/confirm", {"next": f"/t/{world.timebank.slug}/exchanges"}
    )
    assert confirmed.status_code == 200
    assert "For you to confirm" not in confirmed.text
    assert "waiting for a coordinator" in confirmed.text


async def test_a_dispute_needs_a_reason(client, world: World):
    await sign_in(client, world.member)
    logged = await submit(client, f"/t/{world.timebank.slug}/log", log_fields(world))
    await sign_in(client, world.other_member)
    refused = await submit(client, f"{logged.url.path}/dispute", {"reason": " "})
    assert refused.status_code == 422 and "say why" in refused.text.lower()
    disputed = await submit(client, f"{logged.url.path}/dispute", {"reason": "It was 1 hour"})
    assert disputed.status_code == 200 and "disputed" in disputed.text


async def test_a_form_without_its_csrf_token_is_refused(client, world: World):
    as_person(client, world.member)
    response = await client.post(
        f"/t/{world.timebank.slug}/log", data=log_fields(world), follow_redirects=False
    )
    assert response.status_code == 403
    assert "did not come from this site" in response.text


async def test_pages_carry_the_security_headers(client, world: World):
    response = await client.get("/sign-in")
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    css = await client.get("/static/site.css")
    assert css.status_code == 200 and css.headers["x-content-type-options"] == "nosniff"


async def test_a_member_of_another_timebank_is_told_it_does_not_exist(client, world: World):
    as_person(client, world.stranger_member)
    response = await client.get(f"/t/{world.timebank.slug}")
    assert response.status_code == 404


async def test_two_people_of_the_same_name_are_offered_as_a_choice(client, engine, world: World):
    namesake = await make_person(engine, "bea", timebank=world.timebank, roles=("member",))
    await sign_in(client, world.member)
    path = f"/t/{world.timebank.slug}/log"
    ambiguous = await submit(client, path, log_fields(world))
    assert ambiguous.status_code == 422
    assert "Several people match" in ambiguous.text
    assert f'name="who_id" value="{namesake.participant_id}"' in ambiguous.text
    chosen = await submit(
        client, path, log_fields(world, who_id=str(namesake.participant_id), key="choice-1")
    )
    assert chosen.status_code == 200 and "You gave Bea 1:30" in text_of(chosen.text)
    api = await client.get(
        f"/api/v1/timebanks/{world.timebank.slug}/exchanges", headers=world.member.headers
    )
    [exchange] = api.json()["items"]
    assert exchange["receiver_id"] == namesake.participant_id


async def test_what_cannot_be_found_or_read_is_a_page_too(client, world: World):
    as_person(client, world.member)
    missing = await client.get(f"/t/{world.timebank.slug}/exchanges/999999999")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in missing.headers
    unreadable = await client.get(f"/t/{world.timebank.slug}/log?on-behalf=perhaps")
    assert unreadable.status_code == 400
    assert unreadable.headers["content-type"].startswith("text/html")


async def test_a_form_posted_from_a_neighbouring_subdomain_is_refused(client, world: World):
    # A sibling subdomain can plant cookies for the parent domain; browsers mark its requests
    # "same-site", and the pages refuse them whatever token they carry.
    as_person(client, world.member)
    fields = {"csrf_token": await csrf_token(client), **log_fields(world)}
    response = await client.post(
        f"/t/{world.timebank.slug}/log",
        data=fields,
        headers={"sec-fetch-site": "same-site"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    mine = await client.get(f"/t/{world.timebank.slug}/exchanges")
    assert "Weeded the front garden" not in mine.text


async def test_secure_cookies_are_host_only(engine, database_url, world: World):
    """With Secure cookies (the default), both cookies are named __Host-: no other host, a
    neighbouring subdomain included, can set them."""
    from litestar.testing import AsyncTestClient

    from timebank.app import create_app
    from timebank.settings import Settings

    app = create_app(Settings(report_settle_seconds=0), database_url=database_url)
    async with AsyncTestClient(app=app, base_url="https://testserver.local") as secure:
        page = await secure.get("/sign-in")
        assert page.headers["set-cookie"].startswith("__Host-timebank_csrf=")
        token = secure.cookies["__Host-timebank_csrf"]
        signed_in = await secure.post(
            "/sign-in",
            data={"csrf_token": token, "email": world.member.email, "password": PASSWORD},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303
        session = signed_in.headers["set-cookie"]
        assert session.startswith("__Host-timebank_session=")
        assert "Secure" in session and "HttpOnly" in session and "Path=/" in session
        home = await secure.get(f"/t/{world.timebank.slug}")
        assert home.status_code == 200 and "Log hours" in home.text
        # A cookie of the plain name (as a neighbour could plant) signs nobody in.
        secure.cookies.clear()
        secure.cookies.set("timebank_session", world.member.token)
        planted = await secure.get(f"/t/{world.timebank.slug}", follow_redirects=False)
        assert planted.status_code == 303 and "/sign-in" in planted.headers["location"]


# Giving hours ----------------------------------------------------------------------------------


async def _balance(client, world: World, person) -> int:
    answer = await client.get(
        f"/api/v1/timebanks/{world.timebank.slug}/participants/{person.participant_id}/balance",
        headers=world.coordinator.headers,
    )
    return answer.json()["balance_minutes"]


async def test_a_member_gives_an_hour_from_home_once_however_often_the_form_is_sent(
    client, world: World
):
    home = await sign_in(client, world.member)
    assert f'href="/t/{world.timebank.slug}/give"' in home.text
    form = await client.get(f"/t/{world.timebank.slug}/give")
    assert form.status_code == 200
    assert "Give hours" in text_of(form.text)
    for label in ("Give to", "A person", "The community pot", "Who to?", "How many hours?"):
        assert label in text_of(form.text), label
    key = hidden_fields(form.text)["key"]
    fields = {"key": key, "to": "person", "who": "Bea", "duration": "1:00", "note": "thanks"}
    first = await submit(client, f"/t/{world.timebank.slug}/give", fields)
    again = await submit(client, f"/t/{world.timebank.slug}/give", fields)
    assert first.status_code == again.status_code == 200
    assert first.url.path == f"/t/{world.timebank.slug}"
    assert "Given: thank you" in text_of(first.text)
    assert "\u22121:00" in text_of(first.text)  # my balance
    client.cookies.clear()
    assert await _balance(client, world, world.other_member) == 60


async def test_a_gift_to_the_pot_needs_no_name(client, world: World):
    await sign_in(client, world.member)
    fields = {"key": "pot-gift", "to": "pot", "duration": "0:30"}
    answer = await submit(client, f"/t/{world.timebank.slug}/give", fields)
    assert answer.status_code == 200 and "Given" in text_of(answer.text)
    assert await _balance(client, world, world.member) == -30


async def test_a_gift_past_the_floor_comes_back_with_the_limit_beside_the_hours(
    client, world: World
):
    await sign_in(client, world.member)
    fields = {"key": "too-much", "to": "person", "who": "Bea", "duration": "11", "note": "x"}
    answer = await submit(client, f"/t/{world.timebank.slug}/give", fields)
    assert answer.status_code == 409
    assert 'id="duration-error"' in answer.text and "at most 10:00" in text_of(answer.text)
    assert 'value="Bea"' in answer.text and 'value="11"' in answer.text
    assert "Nothing was given yet" in text_of(answer.text)
    empty = await submit(client, f"/t/{world.timebank.slug}/give", {"to": "person", "who": ""})
    assert empty.status_code == 422
    assert 'id="who-error"' in empty.text and 'id="duration-error"' in empty.text
    assert await _balance(client, world, world.other_member) == 0


async def test_a_member_sees_hours_given_and_received_where_the_timebank_chooses(
    client, world: World
):
    changed = await client.patch(
        f"/api/v1/timebanks/{world.timebank.slug}",
        json={"balance_display": "given_received"},
        headers=world.coordinator.headers,
    )
    assert changed.status_code == 200
    await sign_in(client, world.member)
    await submit(client, f"/t/{world.timebank.slug}/give", {"to": "pot", "duration": "2"})
    home = text_of((await client.get(f"/t/{world.timebank.slug}")).text)
    assert "My hours" in home and "Given 0:00" in home and "Received 0:00" in home
    assert "My balance" not in home and "\u22122:00" not in home  # no net figure
