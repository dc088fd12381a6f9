"""Signing in and out, tokens, invitations and the admin bootstrap, as a client sees them."""

import os
import subprocess
import sys

from tests.people import PASSWORD, make_person
from timebank.auth import invitations_repository
from timebank.auth.secrets import new_token


async def test_login_gives_a_token_and_a_session_cookie_that_both_work(client, engine):
    person = await make_person(engine, "ada")
    response = await client.post(
        "/api/v1/auth/login", json={"email": person.email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["user_id"] == person.user_id
    set_cookie = response.headers["set-cookie"]
    assert "timebank_session=" in set_cookie and "HttpOnly" in set_cookie
    assert "SameSite=lax" in set_cookie or "samesite=lax" in set_cookie.lower()

    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.json()["email"] == person.email
    by_cookie = await client.get("/api/v1/auth/me")  # the client kept the cookie
    assert by_cookie.status_code == 200


async def test_wrong_email_and_wrong_password_answer_the_same(client, engine):
    person = await make_person(engine, "bea")
    wrong_password = await client.post(
        "/api/v1/auth/login", json={"email": person.email, "password": "not the password"}
    )
    wrong_email = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.org", "password": PASSWORD}
    )
    assert wrong_password.status_code == wrong_email.status_code == 401
    assert wrong_password.json()["detail"] == wrong_email.json()["detail"]
    assert wrong_password.json()["type"].endswith("/unauthenticated")
    assert wrong_password.headers["content-type"].startswith("application/problem+json")


async def test_repeated_failures_pause_sign_in_for_that_account(client, engine):
    person = await make_person(engine, "cy")
    for _ in range(5):
        response = await client.post(
            "/api/v1/auth/login", json={"email": person.email, "password": "guess guess"}
        )
        assert response.status_code == 401
    paused = await client.post(
        "/api/v1/auth/login", json={"email": person.email, "password": PASSWORD}
    )
    assert paused.status_code == 429
    assert paused.json()["type"].endswith("/rate-limited")
    assert int(paused.headers["retry-after"]) > 0


async def test_logout_ends_the_session(client, engine):
    person = await make_person(engine, "dee")
    login = await client.post(
        "/api/v1/auth/login", json={"email": person.email, "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401


async def test_api_tokens_are_listed_without_secrets_and_can_be_revoked(client, engine):
    person = await make_person(engine, "eve")
    created = await client.post(
        "/api/v1/auth/tokens", json={"name": "spreadsheet"}, headers=person.headers
    )
    assert created.status_code == 201
    secret = created.json()["token"]
    listed = await client.get("/api/v1/auth/tokens", headers=person.headers)
    assert "spreadsheet" in [t["name"] for t in listed.json()]
    assert all("token" not in t and "token_hash" not in t for t in listed.json())
    new_headers = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/auth/me", headers=new_headers)).status_code == 200
    revoked = await client.delete(
        f"/api/v1/auth/tokens/{created.json()['id']}", headers=person.headers
    )
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=new_headers)).status_code == 401


async def test_someone_elses_token_cannot_be_revoked(client, engine):
    owner = await make_person(engine, "fay")
    other = await make_person(engine, "gus")
    created = await client.post("/api/v1/auth/tokens", json={"name": "mine"}, headers=owner.headers)
    response = await client.delete(
        f"/api/v1/auth/tokens/{created.json()['id']}", headers=other.headers
    )
    assert response.status_code == 404


async def test_a_token_id_beyond_any_row_is_refused_in_plain_words(client, engine):
    person = await make_person(engine, "ida")
    response = await client.delete(
        "/api/v1/auth/tokens/99999999999999999999", headers=person.headers
    )
    assert response.status_code in (404, 422)
    assert "$1" not in response.text and "int64" not in response.text


async def test_invitation_sets_the_password_once(client, engine, timebank):
    # An invitation is for an address; accepting it signed out makes that address's account.
    email = f"hal-{new_token()[0][:8].lower()}@example.org"
    secret, token_hash = new_token()
    from datetime import UTC, datetime, timedelta

    async with engine.begin() as conn:
        await invitations_repository.insert_invitation(
            conn,
            timebank_id=timebank.id,
            participant_id=None,
            email=email,
            roles=["coordinator"],
            token_hash=token_hash,
            invited_by=None,
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
    too_short = await client.post(
        "/api/v1/auth/invitations/accept", json={"token": secret, "password": "short"}
    )
    assert too_short.status_code == 422
    accepted = await client.post(
        "/api/v1/auth/invitations/accept", json={"token": secret, "password": "a new password 1"}
    )
    assert accepted.status_code == 200, accepted.text
    again = await client.post(
        "/api/v1/auth/invitations/accept", json={"token": secret, "password": "another one 22"}
    )
    assert again.status_code == 404
    login = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": "a new password 1"}
    )
    assert login.status_code == 200


async def test_cookie_sessions_refuse_non_json_writes(client, engine):
    person = await make_person(engine, "ivy")
    await client.post("/api/v1/auth/login", json={"email": person.email, "password": PASSWORD})
    forged = await client.post(
        "/api/v1/auth/tokens", content="name=evil", headers={"content-type": "text/plain"}
    )
    assert forged.status_code == 415
    forged_json_text = await client.post(
        "/api/v1/auth/tokens", content='{"name": "evil"}', headers={"content-type": "text/plain"}
    )
    assert forged_json_text.status_code == 415
    tokens = await client.get("/api/v1/auth/tokens")
    assert "evil" not in [t["name"] for t in tokens.json()]


def test_admin_create_reads_the_password_from_the_environment_not_argv(database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env.update(TIMEBANK_DATABASE_URL=database_url, TIMEBANK_ADMIN_PASSWORD="an admin password")
    result = subprocess.run(
        [sys.executable, "-m", "timebank.cli", "admin", "create", "--email", "Root@Example.org"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "site admin" in result.stdout
    assert "an admin password" not in result.stdout + result.stderr
