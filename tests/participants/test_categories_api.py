"""Service categories: everyone in a timebank reads them; its coordinators add to them."""

from tests.conftest import unique_slug

PROBLEM = "https://timebank.dev/problems/"


async def test_everyone_in_the_timebank_reads_the_categories(client, world):
    path = f"/api/v1/timebanks/{world.timebank.slug}/categories"
    for person in (world.member, world.funder, world.coordinator, world.admin):
        response = await client.get(path, headers=person.headers)
        assert response.status_code == 200
        assert {"gardening", "lifts", "other"} <= {c["slug"] for c in response.json()}
    assert (await client.get(path, headers=world.stranger_member.headers)).status_code == 404
    assert (await client.get(path)).status_code == 401


async def test_the_coordinator_adds_a_category_once(client, world):
    path = f"/api/v1/timebanks/{world.timebank.slug}/categories"
    slug = unique_slug("c")[:60]
    body = {"slug": slug, "name": "  Dog walking "}
    added = await client.post(path, json=body, headers=world.coordinator.headers)
    assert added.status_code == 201, added.text
    assert added.json()["name"] == "Dog walking" and added.json()["slug"] == slug
    listed = await client.get(path, headers=world.member.headers)
    assert "Dog walking" in [c["name"] for c in listed.json()]

    again = await client.post(path, json=body, headers=world.admin.headers)
    assert again.status_code == 409
    assert again.json()["type"] == PROBLEM + "conflict"

    # The same slug in another timebank is another category.
    other = f"/api/v1/timebanks/{world.other_timebank.slug}/categories"
    assert (
        await client.post(other, json=body, headers=world.stranger_coordinator.headers)
    ).status_code == 201


async def test_only_coordinators_add_categories(client, world):
    path = f"/api/v1/timebanks/{world.timebank.slug}/categories"
    body = {"slug": "knitting", "name": "Knitting"}
    for person in (world.member, world.funder):
        assert (await client.post(path, json=body, headers=person.headers)).status_code == 403
    assert (
        await client.post(path, json=body, headers=world.stranger_coordinator.headers)
    ).status_code == 404
    for invalid in ({"slug": "Knitting!", "name": "Knitting"}, {"slug": "knit", "name": " "}):
        response = await client.post(path, json=invalid, headers=world.coordinator.headers)
        assert response.status_code == 422
