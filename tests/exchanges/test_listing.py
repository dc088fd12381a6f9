"""Finding exchanges: filters by state, participant and service date, and keyset pages."""

from datetime import date, timedelta

from tests.exchanges.conftest import exchange_body
from tests.people import make_person


def _day(days_ago: int) -> str:
    return (date.today() - timedelta(days=days_ago)).isoformat()


async def test_filters_and_pages(api, world, engine):
    ada, bea, coordinator = world.member, world.other_member, world.coordinator
    cy = await make_person(engine, "cy", timebank=world.timebank, roles=("member",))
    ids = []
    for days_ago in (10, 8, 6, 4, 2):
        logged = await api.logged(ada, exchange_body(ada, bea, 15, service_date=_day(days_ago)))
        ids.append(logged["id"])
    with_cy = await api.logged(cy, exchange_body(cy, bea, 15, service_date=_day(1)))
    await api.decided(bea, ids[0], "confirm")

    async def listed(by=coordinator, **params) -> dict:
        response = await api.client.get(f"{api.base}/exchanges", params=params, headers=by.headers)
        assert response.status_code == 200, response.text
        return response.json()

    everything = await listed()
    assert [e["id"] for e in everything["items"]] == [*ids, with_cy["id"]]
    assert everything["next_after_id"] is None

    assert [e["id"] for e in (await listed(state="awaiting_approval"))["items"]] == [ids[0]]
    assert [e["id"] for e in (await listed(participant_id=cy.participant_id))["items"]] == [
        with_cy["id"]
    ]
    period = await listed(**{"from": _day(8), "to": _day(4)})
    assert [e["id"] for e in period["items"]] == ids[1:4]

    # Keyset pages of two: every exchange once, in order.
    seen, after = [], None
    while True:
        params = {"limit": 2, **({"after_id": after} if after is not None else {})}
        page = await listed(**params)
        seen.extend(e["id"] for e in page["items"])
        after = page["next_after_id"]
        if after is None:
            break
    assert seen == [*ids, with_cy["id"]]

    # Bea is party to everything; Ada to her own five.
    assert len((await listed(by=bea))["items"]) == 6
    assert [e["id"] for e in (await listed(by=ada))["items"]] == ids


async def test_bad_filters_are_refused(api, world):
    for params in ({"state": "lost"}, {"limit": 0}, {"limit": 1000}, {"from": "soon"}):
        response = await api.client.get(
            f"{api.base}/exchanges", params=params, headers=world.coordinator.headers
        )
        assert response.status_code == 422, params
        assert response.json()["type"].endswith("/validation")


async def test_an_unknown_exchange_is_404(api, world):
    response = await api.get(world.coordinator, 987654321)
    assert response.status_code == 404
    response = await api.decide(world.coordinator, 987654321, "approve")
    assert response.status_code == 404


async def test_statement_pages_with_running_balance(api, world):
    ada, bea, coordinator = world.member, world.other_member, world.coordinator
    for minutes in (10, 20, 30):
        logged = await api.logged(coordinator, exchange_body(ada, bea, minutes))
        await api.decided(coordinator, logged["id"], "approve")
    url = f"{api.base}/participants/{ada.participant_id}/statement"
    first = (await api.client.get(url, params={"limit": 2}, headers=ada.headers)).json()
    assert [(line["minutes"], line["balance_after"]) for line in first["lines"]] == [
        (30, 60),
        (20, 30),
    ]
    rest = await api.client.get(
        url,
        params={"limit": 2, "before_version": first["next_before_version"]},
        headers=ada.headers,
    )
    assert [(line["minutes"], line["balance_after"]) for line in rest.json()["lines"]] == [(10, 10)]
    assert rest.json()["next_before_version"] is None
