"""The service over HTTP: health tells the truth about the database; the API documents itself."""

from litestar.testing import AsyncTestClient

from timebank.app import create_app
from timebank.settings import Settings


async def test_health_answers_200_when_the_database_answers(database_url):
    async with AsyncTestClient(app=create_app(Settings(), database_url=database_url)) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_health_answers_503_when_the_database_is_gone(tmp_path):
    nowhere = f"postgresql+asyncpg://postgres@/timebank?host={tmp_path}"
    async with AsyncTestClient(app=create_app(Settings(), database_url=nowhere)) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


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
