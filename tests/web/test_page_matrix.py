"""The authorisation matrix of the pages: every page route (kept out of the OpenAPI document),
called by each of the eight callers of tests/test_authorization_matrix.py through a browser's
session cookie, with the CSRF token a real form carries, and each answer compared with the
table below. The pages call the same services as the API, so the table says the same thing
the API's does; tests/test_authorization_matrix.py fails if a route is in neither table.

A refused cell answers: a redirect (303) to the sign-in page for anonymous callers; 404 to
people of another timebank on a timebank's pages; 403 to people of this timebank without the
right; and a refused form leaves things as they were.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from httpx import Response
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import unique_slug
from tests.people import PASSWORD, make_world
from tests.test_authorization_matrix import (
    ANYONE,
    IN_TIMEBANK,
    MANAGERS,
    MEMBER,
    MEMBER_OR_MANAGER,
    ROLES,
    SIGNED_IN,
    Ctx,
    fresh_password_reset,
    newcomer,
    pot_balance,
)
from tests.web.pages import as_person, csrf_token, page_routes
from timebank.app import create_app
from timebank.auth.deps import SESSION_COOKIE
from timebank.settings import Settings

T = "/t/{slug}"
EX = T + "/exchanges/{exchange_id}"

# (method path) -> (who may call it, what an allowed call answers: one status, or several
# where the answer depends on who asks, e.g. "/" sends a one-timebank member to it).
PAGES: dict[str, tuple[frozenset[str], int | frozenset[int]]] = {
    "GET /static/{file_path}": (ANYONE, 200),
    "GET /sign-in": (ANYONE, 200),
    "POST /sign-in": (ANYONE, 303),
    "GET /invitation": (ANYONE, 200),
    "POST /invitation": (ANYONE, 303),
    # Accepting an invitation with the signed-in account (here a staff invitation, which
    # anyone signed in may take, whatever else they are).
    "POST /invitation/join": (SIGNED_IN, 303),
    "GET /reset-password": (ANYONE, 200),
    "POST /reset-password": (ANYONE, 303),
    "GET /": (SIGNED_IN, frozenset({200, 303})),
    "POST /sign-out": (SIGNED_IN, 303),
    f"GET {T}": (IN_TIMEBANK, 200),
    f"GET {T}/log": (MEMBER_OR_MANAGER, 200),
    f"POST {T}/log": (MEMBER_OR_MANAGER, 303),
    f"GET {T}/exchanges": (MEMBER_OR_MANAGER, 200),
    # A member logs a session they ran; coordinators choose the host.
    f"GET {T}/sessions/new": (MEMBER_OR_MANAGER, 200),
    f"POST {T}/sessions/new": (MEMBER_OR_MANAGER, 303),
    f"GET {EX}": (MEMBER_OR_MANAGER, 200),
    # Checked with "confirm" (the counterparty only); the other decisions go through the
    # same service call as the API's, whose matrix checks each of them.
    f"POST {EX}/{{action}}": (MEMBER, 303),
    f"GET {T}/queue": (MANAGERS, 200),
    f"POST {T}/queue": (MANAGERS, 200),
    f"GET {T}/participants": (MANAGERS, 200),
    f"GET {T}/participants/new": (MANAGERS, 200),
    f"POST {T}/participants/new": (MANAGERS, 201),
    f"GET {T}/report": (MANAGERS | {"funder"}, 200),
    # Giving hours: from one's own account (members, staff with a participant); coordinators
    # and admins without one grant from the pot there. The pot and a participant's page (their
    # opening balance and leaving): coordinators and admins.
    f"GET {T}/give": (MEMBER_OR_MANAGER, 200),
    f"POST {T}/give": (MEMBER_OR_MANAGER, 303),
    f"GET {T}/pot": (MANAGERS, 200),
    f"GET {T}/participants/{{participant_id}}": (MANAGERS, 200),
    f"POST {T}/participants/{{participant_id}}/opening-balance": (MANAGERS, 303),
    f"POST {T}/participants/{{participant_id}}/leave": (MANAGERS, 303),
    # Imports: coordinators and admins (the confirming form, which imports, is checked).
    f"GET {T}/imports": (MANAGERS, 200),
    f"POST {T}/imports": (MANAGERS, 303),
    # A participant's details and whether they are active: coordinators and admins.
    f"POST {T}/participants/{{participant_id}}/details": (MANAGERS, 303),
    f"POST {T}/participants/{{participant_id}}/deactivate": (MANAGERS, 303),
    f"POST {T}/participants/{{participant_id}}/reactivate": (MANAGERS, 303),
    # A statement to read or print: one's own (those with an account here: the member, staff
    # with a participant), and anyone's for coordinators and admins (here the member's).
    f"GET {T}/statement": (frozenset({"member", "staff"}), 200),
    f"GET {T}/participants/{{participant_id}}/statement": (MEMBER_OR_MANAGER, 200),
}


def refusal(route: str, role: str) -> int:
    if role == "anonymous":
        return 303
    if role.startswith("stranger_") and route.split(" ", 1)[1].startswith(T):
        return 404
    return 403


@dataclass
class PageCell:
    params: dict[str, Any] = field(default_factory=dict)
    form: dict[str, Any] | None = None
    cookie: str | None = None  # the session cookie, if not the caller's own token
    snapshot: Callable[[], Awaitable[Any]] | None = None
    check: Callable[[Response], Awaitable[str | None]] | None = None


def _log_form(role: str) -> dict[str, str]:
    fields = {
        "key": unique_slug("key"),
        "duration": "0:30",
        "service_date": date.today().isoformat(),
        "category": "gardening",
        "description": "page matrix",
    }
    if role == "member":
        return {**fields, "direction": "gave", "who": "Bea"}
    return {**fields, "mode": "on_behalf", "giver": "Ada", "receiver": "Bea"}


async def nothing(ctx: Ctx, role: str) -> PageCell:
    return PageCell()


async def static_file(ctx: Ctx, role: str) -> PageCell:
    return PageCell(params={"file_path": "site.css"})


async def sign_in(ctx: Ctx, role: str) -> PageCell:
    person = ctx.person(role) or ctx.world.member

    async def check(response: Response) -> str | None:
        return None if SESSION_COOKIE in response.cookies else "no session cookie"

    return PageCell(form={"email": person.email, "password": PASSWORD}, check=check)


async def accept_invitation(ctx: Ctx, role: str) -> PageCell:
    invitee = await ctx.invitee()
    password = "a long enough password"
    return PageCell(
        form={
            "token": invitee["invitation_token"],
            "password": password,
            "password_again": password,
        }
    )


async def join_signed_in(ctx: Ctx, role: str) -> PageCell:
    invitation = await ctx.staff_invitation(role)

    async def check(response: Response) -> str | None:
        wanted = f"/t/{ctx.world.timebank.slug}"
        return _where(response, wanted)

    return PageCell(form={"token": invitation["invitation_token"]}, check=check)


def _where(response: Response, wanted: str) -> str | None:
    location = response.headers.get("location", "")
    return None if location == wanted else f"sent to {location!r}, not {wanted!r}"


async def reset_password(ctx: Ctx, role: str) -> PageCell:
    _, secret = await fresh_password_reset(ctx)
    password = "a reset password"
    return PageCell(form={"token": secret, "password": password, "password_again": password})


async def sign_out(ctx: Ctx, role: str) -> PageCell:
    person = ctx.person(role)
    if person is None:
        return PageCell()
    _, secret = await ctx.fresh_token(person)

    async def check(response: Response) -> str | None:
        status = await ctx.me_status(secret)
        return None if status == 401 else f"the session still works ({status})"

    return PageCell(cookie=secret, form={}, check=check)


def _exchange_count(ctx: Ctx) -> Callable[[], Awaitable[int]]:
    async def snapshot() -> int:
        seen = await ctx.seen_by_admin(f"{ctx.base}/exchanges?limit=200")
        return len(seen["items"])

    return snapshot


async def log_exchange(ctx: Ctx, role: str) -> PageCell:
    return PageCell(form=_log_form(role), snapshot=_exchange_count(ctx))


async def log_session(ctx: Ctx, role: str) -> PageCell:
    async def snapshot() -> int:
        seen = await ctx.seen_by_admin(f"{ctx.base}/exchanges?limit=200")
        return len([item for item in seen["items"] if item["group_id"] is not None])

    world = ctx.world
    form = {
        "key": unique_slug("key"),
        "side": "gives",
        "attendee": [str(world.other_member.participant_id)],
        "duration": "1",
        "service_date": date.today().isoformat(),
        "category": "gardening",
    }
    if role != "member":
        form["host"] = str(world.member.participant_id)
    return PageCell(form=form, snapshot=snapshot)


async def read_exchange(ctx: Ctx, role: str) -> PageCell:
    return PageCell(params={"exchange_id": await ctx.exchange("logged")})


async def confirm(ctx: Ctx, role: str) -> PageCell:
    exchange_id = await ctx.exchange("for_member")

    async def check(response: Response) -> str | None:
        state = (await ctx.exchange_snapshot(exchange_id)())[0]
        return None if state == "awaiting_approval" else f"the state is {state}"

    return PageCell(
        params={"exchange_id": exchange_id, "action": "confirm"},
        form={},
        snapshot=ctx.exchange_snapshot(exchange_id),
        check=check,
    )


async def decide_queue(ctx: Ctx, role: str) -> PageCell:
    exchange_id = await ctx.exchange("awaiting_approval")

    async def check(response: Response) -> str | None:
        state = (await ctx.exchange_snapshot(exchange_id)())[0]
        return None if state == "approved" else f"the state is {state}"

    return PageCell(
        form={"ids": [str(exchange_id)], "action": "approve"},
        snapshot=ctx.exchange_snapshot(exchange_id),
        check=check,
    )


async def add_participant(ctx: Ctx, role: str) -> PageCell:
    async def snapshot() -> int:
        seen = await ctx.seen_by_admin(f"{ctx.base}/participants?limit=200")
        return len(seen["items"])

    async def check(response: Response) -> str | None:
        return None if "/invitation?token=" in response.text else "no invitation link"

    return PageCell(
        form={
            "display_name": f"Nia {role}",
            "kind": "member",
            "email": f"{unique_slug('nia')}@example.org",
            "key": unique_slug("key"),
        },
        snapshot=snapshot,
        check=check,
    )


def _balances(ctx: Ctx, *people: Any) -> Callable[[], Awaitable[list[int]]]:
    async def snapshot() -> list[int]:
        seen = []
        for person in people:
            path = f"{ctx.base}/participants/{person.participant_id}/balance"
            seen.append((await ctx.seen_by_admin(path))["balance_minutes"])
        return seen

    return snapshot


async def give(ctx: Ctx, role: str) -> PageCell:
    # With a participant of one's own: a gift to Bea; a coordinator or admin without one
    # grants to Ada from the pot.
    w = ctx.world
    person = ctx.person(role)
    form = {"key": unique_slug("key"), "to": "person", "who": "Bea", "duration": "0:05"}
    if person is None or person.participant_id is None:
        form = {**form, "mode": "grant", "who": "Ada", "note": "page matrix"}
    snapshot = _balances(ctx, w.member, w.other_member)

    async def check(response: Response) -> str | None:
        changed = await snapshot()
        return None if changed != [0, 0] else "no balance moved"

    return PageCell(form=form, snapshot=snapshot, check=check)


async def participant_page(ctx: Ctx, role: str) -> PageCell:
    return PageCell(params={"participant_id": ctx.world.member.participant_id})


async def opening_page(ctx: Ctx, role: str) -> PageCell:
    target = await newcomer(ctx)
    snapshot = _balances(ctx, target)

    async def check(response: Response) -> str | None:
        return None if await snapshot() == [45] else "the opening balance is not set"

    return PageCell(
        params={"participant_id": target.participant_id},
        form={"opening_sign": "credit", "opening": "0:45"},
        snapshot=snapshot,
        check=check,
    )


async def leave_page(ctx: Ctx, role: str) -> PageCell:
    target = await newcomer(ctx)
    await ctx.ok(
        "PUT",
        f"{ctx.base}/participants/{target.participant_id}/opening-balance",
        ctx.world.admin,
        {"minutes": 30},
    )

    async def snapshot() -> int:
        return await pot_balance(ctx)

    async def check(response: Response) -> str | None:
        left_with = await _balances(ctx, target)()
        return None if left_with == [0] else f"they still hold {left_with}"

    return PageCell(
        params={"participant_id": target.participant_id},
        form={"leave_to": "pot"},
        snapshot=snapshot,
        check=check,
    )


async def import_page(ctx: Ctx, role: str) -> PageCell:
    path = f"{ctx.base}/participants"

    async def snapshot() -> int:
        return len((await ctx.seen_by_admin(path))["items"])

    before = await snapshot()

    async def check(response: Response) -> str | None:
        return None if await snapshot() == before + 1 else "nobody was imported"

    content = f"name,external_id\nImported {role},page-{role}\n"
    return PageCell(
        form={"kind": "people", "action": "import", "content": content},
        snapshot=snapshot,
        check=check,
    )


async def details_page(ctx: Ctx, role: str) -> PageCell:
    target = await newcomer(ctx)
    path = f"{ctx.base}/participants/{target.participant_id}"
    phone = f"01234 {ROLES.index(role):06d}"

    async def snapshot() -> tuple[str | None, str]:
        seen = await ctx.seen_by_admin(path)
        return seen["phone"], seen["contact_preference"]

    async def check(response: Response) -> str | None:
        after = await snapshot()
        return None if after == (phone, "phone") else f"the details are {after}"

    form = {
        "display_name": "Lee",
        "contact_preference": "phone",
        "phone": phone,
        "email": "",
        "postal_address": "",
        "external_id": "",
    }
    return PageCell(
        params={"participant_id": target.participant_id},
        form=form,
        snapshot=snapshot,
        check=check,
    )


def active_page(active: bool) -> Callable[[Ctx, str], Awaitable[PageCell]]:
    async def setup(ctx: Ctx, role: str) -> PageCell:
        target = await newcomer(ctx)
        path = f"{ctx.base}/participants/{target.participant_id}"
        if active:
            await ctx.ok("POST", f"{path}/deactivate", ctx.world.admin)

        async def snapshot() -> bool:
            return (await ctx.seen_by_admin(path))["deactivated_at"] is None

        async def check(response: Response) -> str | None:
            return None if await snapshot() == active else "not changed"

        return PageCell(
            params={"participant_id": target.participant_id},
            form={},
            snapshot=snapshot,
            check=check,
        )

    return setup


SETUPS: dict[str, Callable[[Ctx, str], Awaitable[PageCell]]] = {
    "GET /static/{file_path}": static_file,
    "GET /sign-in": nothing,
    "POST /sign-in": sign_in,
    "GET /invitation": nothing,
    "POST /invitation": accept_invitation,
    "POST /invitation/join": join_signed_in,
    "GET /reset-password": nothing,
    "POST /reset-password": reset_password,
    "GET /": nothing,
    "POST /sign-out": sign_out,
    f"GET {T}": nothing,
    f"GET {T}/log": nothing,
    f"POST {T}/log": log_exchange,
    f"GET {T}/exchanges": nothing,
    f"GET {T}/sessions/new": nothing,
    f"POST {T}/sessions/new": log_session,
    f"GET {EX}": read_exchange,
    f"POST {EX}/{{action}}": confirm,
    f"GET {T}/queue": nothing,
    f"POST {T}/queue": decide_queue,
    f"GET {T}/participants": nothing,
    f"GET {T}/participants/new": nothing,
    f"POST {T}/participants/new": add_participant,
    f"GET {T}/report": nothing,
    f"GET {T}/give": nothing,
    f"POST {T}/give": give,
    f"GET {T}/pot": nothing,
    f"GET {T}/participants/{{participant_id}}": participant_page,
    f"POST {T}/participants/{{participant_id}}/opening-balance": opening_page,
    f"POST {T}/participants/{{participant_id}}/leave": leave_page,
    f"GET {T}/imports": nothing,
    f"POST {T}/imports": import_page,
    f"POST {T}/participants/{{participant_id}}/details": details_page,
    f"POST {T}/participants/{{participant_id}}/deactivate": active_page(False),
    f"POST {T}/participants/{{participant_id}}/reactivate": active_page(True),
    f"GET {T}/statement": nothing,
    f"GET {T}/participants/{{participant_id}}/statement": participant_page,
}


def _page_routes_to_check() -> list[str]:
    app = create_app(Settings(cookie_secure=False), database_url="postgresql://unused/unused")
    return sorted(page_routes(app) | set(PAGES))


def test_the_table_and_the_setups_name_the_same_pages():
    assert set(PAGES) == set(SETUPS)


async def test_every_page_of_the_router_is_in_the_table_and_no_other(client):
    pages = page_routes(client.app)
    assert pages == set(PAGES), (pages - set(PAGES), set(PAGES) - pages)


@pytest.mark.parametrize("route", _page_routes_to_check())
async def test_who_may_open_each_page(route: str, client: AsyncTestClient, engine: AsyncEngine):
    assert route in PAGES, f"{route} is a page of the app but not in the table"
    allowed, success = PAGES[route]
    method, template = route.split(" ", 1)
    ctx = Ctx(client, engine, await make_world(engine))
    wrong = []
    for role in ROLES:
        cell = await SETUPS[route](ctx, role)
        path = template.format(slug=ctx.world.timebank.slug, **cell.params)
        before = await cell.snapshot() if cell.snapshot else None
        person = ctx.person(role)
        as_person(client, None)
        token = await csrf_token(client)
        secret = cell.cookie or (person.token if person else None)
        if secret:
            client.cookies.set(SESSION_COOKIE, secret)
        if method == "GET":
            response = await client.get(path, follow_redirects=False)
        else:
            form = {"csrf_token": token, **(cell.form or {})}
            response = await client.post(path, data=form, follow_redirects=False)
        expected = success if role in allowed else refusal(route, role)
        statuses = expected if isinstance(expected, frozenset) else {expected}
        if response.status_code not in statuses:
            wrong.append(
                f"{role}: expected {sorted(statuses)}, got {response.status_code} "
                f"{response.headers.get('location', '')} {response.text[:200]}"
            )
        elif role == "anonymous" and role not in allowed:
            if not response.headers.get("location", "").startswith("/sign-in"):
                wrong.append(f"anonymous: sent to {response.headers.get('location')}")
        elif role in allowed and cell.check and (complaint := await cell.check(response)):
            wrong.append(f"{role}: {response.status_code} as expected, but {complaint}")
        elif role not in allowed and cell.snapshot and (after := await cell.snapshot()) != before:
            wrong.append(f"{role}: refused, yet {before!r} became {after!r}")
    as_person(client, None)
    assert not wrong, f"{route}:\n  " + "\n  ".join(wrong)
