"""Contact details on the pages: a coordinator reads how to reach each person wherever people
are listed, edits someone's details on their page (bad input re-rendered beside its field,
nothing changed) and deactivates or reactivates them; members never see anyone else's."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import unique_slug
from tests.exchanges.conftest import Api, exchange_body
from tests.people import World
from tests.web.pages import as_person, submit, text_of

ADDRESS = "3 Mill Lane\nLower Hambleton"
YESTERDAY = (date.today() - timedelta(days=1)).isoformat()


def base(world: World) -> str:
    return f"/api/v1/timebanks/{world.timebank.slug}"


async def enrol(client: AsyncTestClient, world: World, name: str, **fields) -> dict:
    added = await client.post(
        f"{base(world)}/participants",
        json={"display_name": name, "kind": "member", **fields},
        headers=world.coordinator.headers,
    )
    assert added.status_code == 201, added.text
    return added.json()


async def api_seen(client: AsyncTestClient, world: World, participant_id: int) -> dict:
    shown = await client.get(
        f"{base(world)}/participants/{participant_id}", headers=world.admin.headers
    )
    return shown.json()


def details_form(**fields: str) -> dict[str, str]:
    return {
        "display_name": "Nora Post",
        "contact_preference": "post",
        "phone": "",
        "email": "",
        "postal_address": ADDRESS,
        "external_id": "",
        **fields,
    }


async def test_a_coordinator_edits_someones_details_on_their_page(client, world: World):
    nora = await enrol(client, world, "Nora Post", postal_address=ADDRESS)
    page = f"/t/{world.timebank.slug}/participants/{nora['id']}"
    as_person(client, world.coordinator)
    shown = await client.get(page)
    assert shown.status_code == 200
    text = text_of(shown.text)
    assert "Post: 3 Mill Lane, Lower Hambleton" in text and "Edit details" in text
    assert 'name="csrf_token"' in shown.text
    saved = await submit(
        client,
        f"{page}/details",
        details_form(contact_preference="phone", phone="01234 567890", external_id="R-9"),
    )
    assert saved.status_code == 200, saved.text  # after the redirect (303) to their page
    assert saved.url.path == page
    text = text_of(saved.text)
    assert "Their details are saved" in text and "Phone 01234 567890" in text
    stored = await api_seen(client, world, nora["id"])
    assert (stored["phone"], stored["contact_preference"], stored["external_id"]) == (
        "01234 567890",
        "phone",
        "R-9",
    )
    assert stored["postal_address"] == ADDRESS
    # The same form again changes nothing more.
    again = await submit(
        client,
        f"{page}/details",
        details_form(contact_preference="phone", phone="01234 567890", external_id="R-9"),
    )
    assert again.status_code == 200
    assert await api_seen(client, world, nora["id"]) == stored


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"phone": "call me", "contact_preference": "phone"}, "phone", "Use digits"),
        ({"postal_address": "3 Mill\x1b Lane"}, "postal_address", "control characters"),
        ({"external_id": "R\u202e9"}, "external_id", "control characters"),
        ({"postal_address": ""}, "postal_address", "needs an address"),
        ({"contact_preference": "text"}, "phone", "needs a phone number"),
        ({"contact_preference": "pigeon"}, "contact_preference", "Choose email"),
        ({"display_name": ""}, "display_name", "Give a name"),
        ({"email": "not an address"}, "email", "does not look like an email"),
        ({"external_id": "x" * 101}, "external_id", "Up to 100 characters"),
    ],
)
async def test_bad_details_are_re_rendered_beside_their_field(
    client, world: World, fields, field, words
):
    nora = await enrol(client, world, "Nora Post", postal_address=ADDRESS)
    before = await api_seen(client, world, nora["id"])
    page = f"/t/{world.timebank.slug}/participants/{nora['id']}"
    as_person(client, world.coordinator)
    refused = await submit(client, f"{page}/details", details_form(**fields))
    assert refused.status_code == 422, refused.text
    assert f'id="{field}-error"' in refused.text
    assert words in text_of(refused.text)
    assert 'name="csrf_token"' in refused.text  # the form comes back, ready to send again
    assert await api_seen(client, world, nora["id"]) == before


async def test_a_nul_byte_in_the_form_changes_nothing(client, world: World):
    nora = await enrol(client, world, "Nora Post", postal_address=ADDRESS)
    before = await api_seen(client, world, nora["id"])
    as_person(client, world.coordinator)
    refused = await submit(
        client,
        f"/t/{world.timebank.slug}/participants/{nora['id']}/details",
        details_form(postal_address="3 Mill\x00 Lane", phone="0123 456"),
    )
    assert refused.status_code == 422
    assert await api_seen(client, world, nora["id"]) == before


async def test_an_email_someone_else_has_is_refused_on_the_page(client, world: World):
    taken = f"{unique_slug('ola')}@example.org"
    await enrol(client, world, "Ola Mail", email=taken)
    nora = await enrol(client, world, "Nora Post", postal_address=ADDRESS)
    as_person(client, world.coordinator)
    refused = await submit(
        client,
        f"/t/{world.timebank.slug}/participants/{nora['id']}/details",
        details_form(email=taken.upper()),
    )
    assert refused.status_code == 409
    assert 'id="email-error"' in refused.text
    assert (await api_seen(client, world, nora["id"]))["email"] is None


async def test_a_form_without_its_csrf_token_changes_nothing(client, world: World):
    nora = await enrol(client, world, "Nora Post", postal_address=ADDRESS)
    page = f"/t/{world.timebank.slug}/participants/{nora['id']}"
    as_person(client, world.coordinator)
    for path, data in (
        (f"{page}/details", details_form(phone="0123 456")),
        (f"{page}/deactivate", {}),
    ):
        refused = await client.post(path, data=data)
        assert refused.status_code == 403
    seen = await api_seen(client, world, nora["id"])
    assert seen["phone"] is None and seen["deactivated_at"] is None


async def test_deactivating_on_the_page_takes_them_out_of_the_pickers(client, world: World):
    zed = await enrol(client, world, "Zed Zebedee", phone="07700 900123")
    slug = world.timebank.slug
    page = f"/t/{slug}/participants/{zed['id']}"
    as_person(client, world.coordinator)
    for picker in (f"/t/{slug}/log?on-behalf=true", f"/t/{slug}/sessions/new"):
        assert "Zed Zebedee" in (await client.get(picker)).text
    done = await submit(client, f"{page}/deactivate")
    assert done.status_code == 200 and done.url.path == page
    shown = text_of(done.text)
    assert "Zed Zebedee is deactivated" in shown and "Reactivate Zed Zebedee" in shown
    listed = text_of((await client.get(f"/t/{slug}/participants")).text)
    assert "Zed Zebedee deactivated" in listed
    for picker in (f"/t/{slug}/log?on-behalf=true", f"/t/{slug}/sessions/new"):
        assert "Zed Zebedee" not in (await client.get(picker)).text
    as_person(client, world.member)
    assert "Zed Zebedee" not in (await client.get(f"/t/{slug}/give")).text
    # Typed in anyway, the log form says why beside the name.
    refused = await submit(
        client,
        f"/t/{slug}/log",
        {
            "key": unique_slug("key"),
            "direction": "gave",
            "who": "Zed Zebedee",
            "duration": "1",
            "service_date": YESTERDAY,
            "category": "gardening",
        },
    )
    assert refused.status_code == 409, refused.text
    assert "deactivated" in text_of(refused.text)
    as_person(client, world.coordinator)
    back = await submit(client, f"{page}/reactivate")
    assert "Zed Zebedee is active again" in text_of(back.text)
    assert "Zed Zebedee" in (await client.get(f"/t/{slug}/log?on-behalf=true")).text


async def test_a_coordinator_is_not_offered_to_deactivate_themselves(client, world: World):
    assert world.staff is not None and world.staff.participant_id is not None
    as_person(client, world.staff)
    page = f"/t/{world.timebank.slug}/participants/{world.staff.participant_id}"
    text = text_of((await client.get(page)).text)
    assert "Another coordinator deactivates or reactivates your own participant" in text
    refused = await submit(client, f"{page}/deactivate")
    assert refused.status_code == 403
    assert (await api_seen(client, world, world.staff.participant_id))["deactivated_at"] is None


async def test_every_coordinator_list_says_how_to_reach_each_person(client, world: World):
    slug = world.timebank.slug
    phone = await enrol(
        client, world, "Pat Phone", phone="01234 567890", contact_preference="phone"
    )
    post = await enrol(client, world, "Peg Post", postal_address=ADDRESS)
    await enrol(client, world, "Nemo Nowhere")
    api = Api(client, world)
    # The approval queue: an exchange between Pat and Peg waiting for a coordinator.
    body = {**exchange_body(world.member, world.member, 30)}
    body.update(giver_id=phone["id"], receiver_id=post["id"])
    await api.logged(world.coordinator, body)
    # The pot: a grant to Pat.
    granted = await client.post(
        f"{base(world)}/gifts",
        json={"from_id": None, "to_id": phone["id"], "minutes": 15, "note": "for the lifts"},
        headers=world.coordinator.headers,
    )
    assert granted.status_code == 201, granted.text
    # A session hosted by Ada with Pat and Peg.
    session = await api.logged(
        world.member,
        {
            "legs": [
                {"giver_id": world.member.participant_id, "receiver_id": pid, "minutes": 30}
                for pid in (phone["id"], post["id"])
            ],
            "service_date": YESTERDAY,
            "category": "gardening",
            "description": "Lunch club",
        },
    )
    as_person(client, world.coordinator)
    everyone = text_of((await client.get(f"/t/{slug}/participants")).text)
    assert "Phone 01234 567890" in everyone
    assert "Post: 3 Mill Lane, Lower Hambleton" in everyone
    assert f"Email {world.member.email}" in everyone
    assert "no way to reach recorded" in everyone
    queue = text_of((await client.get(f"/t/{slug}/queue")).text)
    assert "Pat Phone: Phone 01234 567890" in queue
    assert "Peg Post: Post: 3 Mill Lane, Lower Hambleton" in queue
    pot = text_of((await client.get(f"/t/{slug}/pot")).text)
    assert "Phone 01234 567890" in pot
    seen = text_of((await client.get(f"/t/{slug}/exchanges/{session['id']}")).text)
    assert "Phone 01234 567890" in seen and "Post: 3 Mill Lane" in seen
    # The host sees the same session without anyone's contact details.
    as_person(client, world.member)
    hosted = text_of((await client.get(f"/t/{slug}/exchanges/{session['id']}")).text)
    assert "Pat Phone" in hosted
    assert "01234 567890" not in hosted and "Mill Lane" not in hosted


async def test_member_pages_never_show_other_peoples_contact_details(client, world: World):
    slug = world.timebank.slug
    await client.patch(
        f"{base(world)}/participants/{world.other_member.participant_id}",
        json={"phone": "07700 900999", "postal_address": ADDRESS},
        headers=world.coordinator.headers,
    )
    api = Api(client, world)
    exchange = await api.logged(
        world.other_member, exchange_body(world.other_member, world.member, 30)
    )
    as_person(client, world.member)
    for path in (
        f"/t/{slug}",
        f"/t/{slug}/exchanges",
        f"/t/{slug}/exchanges/{exchange['id']}",
        f"/t/{slug}/log",
        f"/t/{slug}/give",
        f"/t/{slug}/sessions/new",
    ):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert "07700 900999" not in answer.text and "Mill Lane" not in answer.text, path
        assert world.other_member.email not in answer.text, path
    for path in (
        f"/t/{slug}/participants",
        f"/t/{slug}/participants/{world.other_member.participant_id}",
    ):
        assert (await client.get(path)).status_code == 403


async def test_someone_without_email_is_added_with_a_phone_on_the_page(client, world: World):
    as_person(client, world.coordinator)
    path = f"/t/{world.timebank.slug}/participants/new"
    form = {
        "display_name": "Tom Landline",
        "kind": "member",
        "email": "",
        "phone": "01234 111222",
        "postal_address": "",
        "contact_preference": "phone",
        "key": unique_slug("key"),
    }
    refused = await submit(client, path, {**form, "contact_preference": "post"})
    assert refused.status_code == 422
    assert 'id="postal_address-error"' in refused.text and "needs an address" in refused.text
    added = await submit(client, path, form)
    assert added.status_code == 201, added.text
    listed = text_of((await client.get(f"/t/{world.timebank.slug}/participants")).text)
    assert "Tom Landline" in listed and "Phone 01234 111222" in listed
    odd = await submit(client, path, {**form, "phone": "ring me", "key": unique_slug("key")})
    assert odd.status_code == 422 and 'id="phone-error"' in odd.text
