"""Every operation of the OpenAPI document, driven by schemathesis as a signed-in coordinator:
no 5xx, and every response (status, content type, body) matches what the document promises."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import create_async_engine

from tests.live import running_service
from tests.people import World, make_world
from timebank.db.engine import sqlalchemy_url


async def _world(database_url: str) -> World:
    engine = create_async_engine(sqlalchemy_url(database_url))
    try:
        return await make_world(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[tuple[str, World]]:
    world = asyncio.run(_world(database_url))
    with running_service(database_url) as base_url:
        yield base_url, world


@pytest.fixture
def api_schema(service):
    base_url, world = service
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")

    @schema.hook("map_path_parameters")
    def real_resources(context, path_parameters):
        # Aim most requests at things that exist, so they get past "not found".
        if not path_parameters:
            return path_parameters
        if "slug" in path_parameters:
            path_parameters["slug"] = world.timebank.slug
        if "participant_id" in path_parameters:
            path_parameters["participant_id"] = world.member.participant_id
        return path_parameters

    return schema


def test_every_operation_keeps_its_promises(api_schema, service):
    base_url, world = service
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    failures: dict[str, str] = {}
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        # Signing out ends the token it is sent with: use one that nothing else needs.
        signs_out = operation.label.endswith("/auth/logout")
        sender = world.funder if signs_out else world.coordinator

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def exercise(case):
            case.call_and_validate(
                base_url=base_url,
                headers={"Authorization": f"Bearer {sender.token}"},  # noqa: B023 (used at once)
                checks=checks,
            )

        try:
            exercise()
        except BaseException as failure:  # collect every operation's failure, report them all
            failures[operation.label] = "".join(traceback.format_exception(failure))[-3000:]
    assert operations > 5
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
