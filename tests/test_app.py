"""The service over HTTP: liveness, readiness, request ids, a 503 without a database; the API
documents itself."""

import uuid

from litestar.testing import AsyncTestClient

from tests.conftest import _with_database
from timebank.app import create_app
from timebank.settings import Settings


async def test_ready_answers_200_when_the_database_answers_and_is_migrated(database_url):
    async with AsyncTestClient(app=create_app(Settings(), database_url=database_url)) as client:
        health = await client.get("/health")
        ready = await client.get("/ready")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert ready.json()["migrations"] == "current"


async def test_without_a_database_health_lives_ready_fails_and_the_api_answers_503(tmp_path):
    nowhere = f"postgresql+asyncpg://postgres@/timebank?host={tmp_path}"
    async with AsyncTestClient(app=create_app(Settings(), database_url=nowhere)) as client:
        health = await client.get("/health")
        ready = await client.get("/ready")
        api = await client.get(
            "/api/v1/auth/me", headers={"Authorization": "Bearer not-checked-without-a-database"}
        )
    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["database"] == "unreachable"
    assert api.status_code == 503, api.text
    assert api.headers["content-type"].startswith("application/problem+json")
    assert api.json()["type"].endswith("/unavailable")
    assert int(api.headers["retry-after"]) > 0


async def test_ready_fails_on_a_database_without_the_newest_schema(database_url, raw):
    name = f"timebank_unmigrated_{uuid.uuid4().hex[:8]}"
    await raw.execute(f'CREATE DATABASE "{name}"')
    try:
        app = create_app(Settings(), database_url=_with_database(database_url, name))
        async with AsyncTestClient(app=app) as client:
            ready = await client.get("/ready")
    finally:
        await raw.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    assert ready.status_code == 503
    assert ready.json()["database"] == "ok"
    assert ready.json()["migrations"] == "behind"


async def test_every_response_carries_a_request_id_and_keeps_the_callers(client):
    mine = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    fresh = await client.get("/no-such-page", headers={"X-Request-ID": "bad id\nforged"})
    assert fresh.status_code == 404
    assert fresh.headers["x-request-id"] not in ("", "bad id\nforged")


async def test_metrics_are_refused_outside_the_allow_list(client):
    response = await client.get("/metrics")
    assert response.status_code == 403
    assert response.json()["type"].endswith("/forbidden")


async def test_openapi_is_served_at_schema(database_url):
    async with AsyncTestClient(app=create_app(Settings(), database_url=database_url)) as client:
        response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "Timebank"
    assert "/health" in document["paths"]


async def test_unknown_route_is_a_problem_document(database_url):
    async with AsyncTestClient(app=create_app(Settings(), database_url=database_url)) as client:
        response = await client.get("/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404


async def test_validation_problems_have_one_shape_whoever_found_them(client):
    by_litestar = await client.post("/api/v1/auth/login", json={"email": "x@example.org"})
    by_the_service = await client.post(
        "/api/v1/auth/invitations/accept", json={"token": "t" * 20, "password": "short"}
    )
    for response in (by_litestar, by_the_service):
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"].endswith("/validation")
        assert problem["errors"] and all(
            set(error) >= {"key", "message", "source"} for error in problem["errors"]
        ), problem


async def test_served_over_https_every_answer_keeps_browsers_on_https(database_url):
    """With TIMEBANK_COOKIE_SECURE (the default: the service is behind HTTPS), every answer,
    pages, API and errors alike, tells the browser to use HTTPS only; for plain-HTTP testing
    (false) none does."""
    paths = ("/health", "/sign-in", "/api/v1/auth/me", "/no-such-page")
    async with AsyncTestClient(app=create_app(Settings(), database_url=database_url)) as client:
        for path in paths:
            answer = await client.get(path)
            assert answer.headers["strict-transport-security"] == "max-age=31536000", path
    plain = Settings(cookie_secure=False)
    async with AsyncTestClient(app=create_app(plain, database_url=database_url)) as client:
        for path in paths:
            assert "strict-transport-security" not in (await client.get(path)).headers, path
