"""Prometheus metrics, read over a real socket from 127.0.0.1 (in TIMEBANK_METRICS_ALLOW by
default): requests by route template, latencies, and exchanges by state from the database."""

from __future__ import annotations

import httpx

from tests.live import running_service
from tests.people import make_world
from timebank.ops import metrics
from timebank.settings import Settings


async def test_metrics_count_requests_by_route_template_and_read_exchanges(database_url, engine):
    world = await make_world(engine)
    with running_service(database_url) as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=world.member.headers) as http:
            me = await http.get("/api/v1/auth/me")
            assert me.status_code == 200
            balance = await http.get(
                f"/api/v1/timebanks/{world.timebank.slug}/participants/"
                f"{world.member.participant_id}/balance"
            )
            assert balance.status_code == 200
            response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-type"] == metrics.CONTENT_TYPE  # its charset named once
    text = response.text
    assert 'route="/api/v1/auth/me"' in text
    assert "/api/v1/timebanks/{slug}/participants/{participant_id}/balance" in text
    assert "timebank_http_request_duration_seconds_bucket" in text
    assert "timebank_transaction_retries_total" in text or "timebank_transaction_retries" in text
    assert "timebank_database_up 1.0" in text
    assert "timebank_postings" in text


def test_metrics_allow_list_can_shut_everyone_out(database_url):
    with running_service(database_url, Settings(cookie_secure=False, metrics_allow="")) as base:
        assert httpx.get(f"{base}/metrics").status_code == 403
