"""The authorisation matrix of DESIGN.md §4 (as issue 3 amends it: coordinators also manage roles
in their own timebank): every route of the app, read from the router, called by each of seven
callers with a valid body and resources that exist, and each answer compared with the table.

Callers: anonymous; ``member`` (Ada, a member of the first timebank); ``stranger_member`` and
``stranger_coordinator`` (a member and a coordinator of another timebank); ``coordinator``,
``funder`` (of the first timebank), ``admin`` (a site admin, with no role in any timebank) and
``staff`` (a coordinator of the first timebank with a participant of their own, not a member).

An allowed cell must answer the route's success status (and, where it is cheap to see, do what
it says). A refused cell must answer 401 to anonymous callers; 404 to people of another
timebank on a timebank's routes (they must not learn it exists), 403 elsewhere; and 403 to
people of this timebank without the right. A refused call must also leave things as they were.

A route that is in the router but not in the table (or the other way round) fails, so a new
route cannot be forgotten here.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import unique_slug
from tests.exchanges.conftest import exchange_body
from tests.people import PASSWORD, Person, World, make_person, make_world
from timebank.app import create_app
from timebank.auth import repository as auth_repository
from timebank.auth.secrets import new_token
from timebank.settings import Settings

ROLES = (
    "anonymous",
    "member",
    "stranger_member",
    "coordinator",
    "stranger_coordinator",
    "funder",
    "admin",
    "staff",
)
ANYONE = frozenset(ROLES)
SIGNED_IN = ANYONE - {"anonymous"}
# ``staff``: a coordinator only (no member role) with a participant of their own. They are a
# coordinator in every row: the cells act on exchanges between two members, not on their own.
IN_TIMEBANK = frozenset({"member", "coordinator", "funder", "admin", "staff"})
MEMBER_OR_MANAGER = frozenset({"member", "coordinator", "admin", "staff"})
MANAGERS = frozenset({"coordinator", "admin", "staff"})
MEMBER = frozenset({"member"})
ADMIN = frozenset({"admin"})

TB = "/api/v1/timebanks/{slug}"
EX = TB + "/exchanges/{exchange_id}"
PARTICIPANT = TB + "/participants/{participant_id}"

# (method path) -> (who may call it, what an allowed call answers). Everyone else is refused:
# see `refusal`. The resources a cell acts on are set up by SETUPS below.
EXPECTED: dict[str, tuple[frozenset[str], int]] = {
    # Public: no sign-in needed.
    "GET /health": (ANYONE, 200),
    "GET /ready": (ANYONE, 200),
    # Metrics go by the client's address (TIMEBANK_METRICS_ALLOW, loopback by default), not by
    # role: the in-process test client has no address, so everyone is refused here (403), and
    # tests/ops/test_metrics.py reads them from 127.0.0.1.
    "GET /metrics": (frozenset(), 200),
    "POST /api/v1/auth/login": (ANYONE, 200),
    "POST /api/v1/auth/invitations/accept": (ANYONE, 200),
    # One's own account and tokens: anyone signed in, whichever timebank they belong to.
    "POST /api/v1/auth/logout": (SIGNED_IN, 204),
    "POST /api/v1/auth/password": (SIGNED_IN, 204),
    "POST /api/v1/auth/sign-out-everywhere": (SIGNED_IN, 204),
    "POST /api/v1/auth/password-reset": (ANYONE, 204),
    "GET /api/v1/auth/me": (SIGNED_IN, 200),
    "GET /api/v1/auth/tokens": (SIGNED_IN, 200),
    "POST /api/v1/auth/tokens": (SIGNED_IN, 201),
    "DELETE /api/v1/auth/tokens/{token_id}": (SIGNED_IN, 204),  # a token of the caller
    # Create timebanks: admins (§4 last row).
    "POST /api/v1/timebanks": (ADMIN, 201),
    # A timebank and its categories: anyone with a role in it, and admins.
    f"GET {TB}": (IN_TIMEBANK, 200),
    f"GET {TB}/categories": (IN_TIMEBANK, 200),
    # Manage the timebank, its policy, participants, roles (issue 3), invitations, categories.
    f"PATCH {TB}": (MANAGERS, 200),
    f"POST {TB}/participants": (MANAGERS, 201),
    f"PUT {PARTICIPANT}/roles": (MANAGERS, 200),
    # A participant's details, and deactivating or reactivating them (never one's own; the
    # member is refused even their own details here).
    f"PATCH {PARTICIPANT}": (MANAGERS, 200),
    f"POST {PARTICIPANT}/deactivate": (MANAGERS, 200),
    f"POST {PARTICIPANT}/reactivate": (MANAGERS, 200),
    f"POST {PARTICIPANT}/invitation": (MANAGERS, 201),  # a participant not yet signed up
    f"POST {TB}/categories": (MANAGERS, 201),
    # Staff (coordinators, funders without a participant) and the record of role changes.
    f"POST {TB}/staff": (MANAGERS, 201),
    f"GET {TB}/staff": (MANAGERS, 200),
    f"PUT {TB}/staff/{{user_id}}/roles": (MANAGERS, 200),
    f"GET {TB}/role-changes": (MANAGERS, 200),
    # Members see a directory (id, name, kind) to say whom they exchanged with; coordinators
    # and admins the full list; funders no one.
    f"GET {TB}/participants": (MEMBER_OR_MANAGER, 200),
    # Own details, balance and history (the member's own participant); coordinators anyone's.
    f"GET {PARTICIPANT}": (MEMBER_OR_MANAGER, 200),
    f"GET {PARTICIPANT}/balance": (MEMBER_OR_MANAGER, 200),
    f"GET {PARTICIPANT}/statement": (MEMBER_OR_MANAGER, 200),
    # Log an exchange one is party to (member), or on behalf of anyone (coordinator, admin).
    f"POST {TB}/exchanges": (MEMBER_OR_MANAGER, 201),
    # Exchanges: a member sees those they are party to (this one, they logged).
    f"GET {TB}/exchanges": (MEMBER_OR_MANAGER, 200),
    f"GET {EX}": (MEMBER_OR_MANAGER, 200),
    # Confirm or dispute: the counterparty only (other_member logged it, the member is the
    # other party); coordinators decide instead.
    f"POST {EX}/confirm": (MEMBER, 200),
    f"POST {EX}/dispute": (MEMBER, 200),
    # Approve, reject, reverse: coordinators of this timebank and admins.
    f"POST {TB}/exchanges/approve": (MANAGERS, 200),
    f"POST {EX}/approve": (MANAGERS, 200),
    f"POST {EX}/reject": (MANAGERS, 200),
    f"POST {EX}/reverse": (MANAGERS, 200),
    # Cancel: whoever logged it (here the member), or a coordinator or admin. (DESIGN §2 says
    # "author cancels"; the service also lets coordinators cancel: see the report.)
    f"POST {EX}/cancel": (MEMBER_OR_MANAGER, 200),
    # One account's limits (not one's own: the member asks for their own here), and the
    # accounts a reversal left outside their limits: coordinators and admins.
    f"PUT {PARTICIPANT}/limits": (MANAGERS, 200),
    f"GET {TB}/ledger/flags": (MANAGERS, 200),
    # The ledger audit: coordinators and admins (issue 3 §6).
    f"GET {TB}/ledger/verify": (MANAGERS, 200),
    # Gifts: from one's own account (the member, staff with a participant); grants from the
    # pot: coordinators and admins. Funders neither.
    f"POST {TB}/gifts": (MEMBER_OR_MANAGER, 201),
    # Leaving: the participant themself (here the member), or a coordinator or admin for them.
    f"POST {PARTICIPANT}/leave": (MEMBER_OR_MANAGER, 201),
    # Opening balances and the community pot: coordinators and admins.
    f"PUT {PARTICIPANT}/opening-balance": (MANAGERS, 200),
    f"GET {TB}/pot": (MANAGERS, 200),
    # Imports (people here; history is the same route): coordinators and admins.
    f"POST {TB}/imports": (MANAGERS, 201),
    # Reciprocity names people: a member their own row, coordinators and admins everyone's.
    f"GET {TB}/reports/reciprocity": (MEMBER_OR_MANAGER, 200),
    # The contribution report and its charts: coordinators, admins, and funders granted it.
    f"GET {TB}/reports/contribution": (MANAGERS | {"funder"}, 200),
    f"GET {TB}/reports/contribution/charts/{{file}}": (MANAGERS | {"funder"}, 200),
    # The archive of the whole timebank (everyone's contact details): coordinators and admins.
    f"GET {TB}/export": (MANAGERS, 200),
}

# Refusals other than the default of `refusal` (e.g. a 404 where the service hides a resource
# from someone not party to it). Every cell above acts on a resource the member is party to, so
# the refusals are the plain ones, but for /metrics: refused by address, to everyone alike.
REFUSED_OTHERWISE: dict[tuple[str, str], int] = {("GET /metrics", role): 403 for role in ROLES}


def refusal(route: str, role: str) -> int:
    """What a caller without the right is answered."""
    if (route, role) in REFUSED_OTHERWISE:
        return REFUSED_OTHERWISE[(route, role)]
    if role == "anonymous":
        return 401
    if role.startswith("stranger_") and route.split(" ", 1)[1].startswith(TB):
        return 404  # people of another timebank are told this one does not exist
    return 403


# --- The routes of the router ------------------------------------------------------------------

_TYPED_PARAMETER = re.compile(r"\{(\w+):\w+\}")


def routes_of(app: Litestar) -> set[str]:
    """Every "METHOD /path/{param}" the app answers, without OPTIONS, HEAD and the OpenAPI
    documents under /schema."""
    found = set()
    for route in app.routes:
        if route.path == "/schema" or route.path.startswith("/schema/"):
            continue
        path = _TYPED_PARAMETER.sub(r"{\1}", route.path)
        found.update(f"{method} {path}" for method in route.methods - {"OPTIONS", "HEAD"})
    return found


def _routes_to_check() -> list[str]:
    # Built only to read its router: the database is opened by the lifespan, never here.
    from tests.web.pages import page_routes

    app = create_app(Settings(cookie_secure=False), database_url="postgresql://unused/unused")
    api_routes = routes_of(app) - page_routes(app)  # the pages: tests/web/test_page_matrix.py
    return sorted(api_routes | set(EXPECTED), key=lambda r: (r.split(" ")[1], r))


# --- Calling the service as each role ----------------------------------------------------------

NO_BODY = object()
NEW_PASSWORD = "a long enough password"
# A refusal is the service's own decision, as a typed problem: not, say, a router's 404.
REFUSAL_TYPES = {
    401: "https://timebank.dev/problems/unauthenticated",
    403: "https://timebank.dev/problems/forbidden",
    404: "https://timebank.dev/problems/not-found",
}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@dataclass
class Upload:
    """A multipart body: form fields and files."""

    fields: dict[str, str]
    files: dict[str, tuple[str, bytes, str]]


@dataclass
class Cell:
    """One call: its path parameters and body; the headers if not the caller's own; what must
    not change if it is refused; and what must hold after it is allowed (a complaint or
    None)."""

    params: dict[str, Any] = field(default_factory=dict)
    body: Any = NO_BODY
    headers: dict[str, str] | None = None
    snapshot: Callable[[], Awaitable[Any]] | None = None
    check: Callable[[Response], Awaitable[str | None]] | None = None


@dataclass
class Ctx:
    client: AsyncTestClient
    engine: AsyncEngine
    world: World

    @property
    def base(self) -> str:
        return f"/api/v1/timebanks/{self.world.timebank.slug}"

    def person(self, role: str) -> Person | None:
        return None if role == "anonymous" else self.world.people[role]

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: Any = NO_BODY
    ) -> Response:
        # Sign-in sets a session cookie on the client; no call may ride on another's session.
        self.client.cookies.clear()
        if body is NO_BODY:
            return await self.client.request(method, path, headers=headers)
        if isinstance(body, Upload):
            return await self.client.request(
                method, path, headers=headers, data=body.fields, files=body.files
            )
        return await self.client.request(method, path, headers=headers, json=body)

    async def ok(self, method: str, path: str, by: Person, body: Any = NO_BODY) -> Any:
        response = await self.request(method, path, by.headers, body)
        assert response.is_success, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    async def seen_by_admin(self, path: str) -> Any:
        return await self.ok("GET", path, self.world.admin)

    async def fresh_token(self, person: Person) -> tuple[int, str]:
        """A new API token of ``person``: (id, secret)."""
        secret, token_hash = new_token()
        async with self.engine.begin() as conn:
            row = await auth_repository.insert_token(
                conn,
                user_id=person.user_id,
                kind="api",
                name="matrix",
                token_hash=token_hash,
                expires_at=datetime.now(UTC) + timedelta(days=1),
            )
        return row["id"], secret

    async def me_status(self, secret: str) -> int:
        return (await self.request("GET", "/api/v1/auth/me", bearer(secret))).status_code

    async def invitee(self) -> dict:
        """A participant with an email, added by the coordinator, who has not signed up."""
        return await self.ok(
            "POST",
            f"{self.base}/participants",
            self.world.coordinator,
            {
                "display_name": "Ivy Invited",
                "kind": "member",
                "email": f"{unique_slug('ivy')}@example.org",
            },
        )

    async def staff_invitation(self, for_role: str = "") -> dict:
        """A staff invitation (coordinator) for a fresh address, made by the coordinator (by the
        admin when the coordinator is to accept it: nobody accepts an invitation they made)."""
        maker = self.world.admin if for_role == "coordinator" else self.world.coordinator
        return await self.ok(
            "POST",
            f"{self.base}/staff",
            maker,
            {"email": f"{unique_slug('sam')}@example.org", "roles": ["coordinator"]},
        )

    # Exchanges, made through the API by the right people.

    async def logged(self, by: Person, giver: Person, receiver: Person) -> int:
        return (
            await self.ok("POST", f"{self.base}/exchanges", by, exchange_body(giver, receiver, 30))
        )["id"]

    async def exchange(self, state: str) -> int:
        """An exchange between the member and other_member, in ``state``: ``for_member`` is
        logged by other_member (so the member confirms or disputes it); ``logged`` is logged
        by the member; ``awaiting_approval`` and ``approved`` go on from there."""
        w = self.world
        if state == "for_member":
            return await self.logged(w.other_member, w.other_member, w.member)
        exchange_id = await self.logged(w.member, w.member, w.other_member)
        if state in ("awaiting_approval", "approved"):
            await self.ok(
                "POST", f"{self.base}/exchanges/{exchange_id}/confirm", w.other_member, {}
            )
        if state == "approved":
            await self.ok("POST", f"{self.base}/exchanges/{exchange_id}/approve", w.coordinator, {})
        return exchange_id

    def exchange_snapshot(self, exchange_id: int) -> Callable[[], Awaitable[Any]]:
        async def snapshot() -> Any:
            seen = await self.seen_by_admin(f"{self.base}/exchanges/{exchange_id}")
            return seen["state"], len(seen["decisions"])

        return snapshot


def _problem_type(response: Response) -> str | None:
    try:
        return response.json().get("type")
    except ValueError:
        return None


def _expect(what: str, actual: Any, expected: Any) -> str | None:
    return None if actual == expected else f"{what} is {actual!r}, not {expected!r}"


# --- What each cell calls, on what ------------------------------------------------------------


async def nothing(ctx: Ctx, role: str) -> Cell:
    return Cell()


async def login(ctx: Ctx, role: str) -> Cell:
    person = ctx.person(role) or ctx.world.member

    async def check(response: Response) -> str | None:
        return _expect(
            "GET /me with the new token", await ctx.me_status(response.json()["token"]), 200
        )

    return Cell(body={"email": person.email, "password": PASSWORD}, check=check)


async def accept_invitation(ctx: Ctx, role: str) -> Cell:
    invitee = await ctx.invitee()

    async def check(response: Response) -> str | None:
        me = await ctx.request("GET", "/api/v1/auth/me", bearer(response.json()["token"]))
        return _expect("the signed-in email", me.json().get("email"), invitee["email"])

    return Cell(body={"token": invitee["invitation_token"], "password": NEW_PASSWORD}, check=check)


async def logout(ctx: Ctx, role: str) -> Cell:
    person = ctx.person(role)
    if person is None:
        return Cell()
    _, secret = await ctx.fresh_token(person)  # so that the person's own token lives on

    async def check(response: Response) -> str | None:
        return _expect("GET /me after logout", await ctx.me_status(secret), 401)

    return Cell(headers=bearer(secret), check=check)


async def change_password(ctx: Ctx, role: str) -> Cell:
    person = ctx.person(role)
    if person is None:
        return Cell(body={"current_password": PASSWORD, "new_password": "a changed password"})

    async def check(response: Response) -> str | None:
        back = await ctx.request(  # the world's people keep their password
            "POST",
            "/api/v1/auth/password",
            person.headers,
            {"current_password": "a changed password", "new_password": PASSWORD},
        )
        return _expect("changing it back", back.status_code, 204)

    return Cell(
        body={"current_password": PASSWORD, "new_password": "a changed password"}, check=check
    )


async def sign_out_everywhere(ctx: Ctx, role: str) -> Cell:
    if role == "anonymous":
        return Cell()
    someone = await make_person(ctx.engine, role)  # not the world's: every token of theirs ends

    async def check(response: Response) -> str | None:
        return _expect("GET /me afterwards", await ctx.me_status(someone.token), 401)

    return Cell(headers=someone.headers, check=check)


async def password_reset_cell(ctx: Ctx, role: str) -> Cell:
    someone, secret = await fresh_password_reset(ctx)

    async def check(response: Response) -> str | None:
        return _expect(
            "GET /me with their token afterwards", await ctx.me_status(someone.token), 401
        )

    return Cell(body={"token": secret, "password": "a reset password"}, check=check)


async def fresh_password_reset(ctx: Ctx) -> tuple[Person, str]:
    """A person of their own with an open password reset, and its secret."""
    someone = await make_person(ctx.engine, "forgetful")
    secret, token_hash = new_token()
    async with ctx.engine.begin() as conn:
        await auth_repository.insert_password_reset(
            conn,
            user_id=someone.user_id,
            token_hash=token_hash,
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
    return someone, secret


async def me(ctx: Ctx, role: str) -> Cell:
    person = ctx.person(role)

    async def check(response: Response) -> str | None:
        assert person is not None
        return _expect("user_id", response.json()["user_id"], person.user_id)

    return Cell(check=check)


async def create_token(ctx: Ctx, role: str) -> Cell:
    async def check(response: Response) -> str | None:
        return _expect("GET /me with it", await ctx.me_status(response.json()["token"]), 200)

    return Cell(body={"name": "matrix"}, check=check)


async def revoke_token(ctx: Ctx, role: str) -> Cell:
    owner = ctx.person(role) or ctx.world.member
    token_id, secret = await ctx.fresh_token(owner)

    async def snapshot() -> int:
        return await ctx.me_status(secret)

    async def check(response: Response) -> str | None:
        return _expect("GET /me with the revoked token", await ctx.me_status(secret), 401)

    return Cell(params={"token_id": token_id}, snapshot=snapshot, check=check)


async def create_timebank(ctx: Ctx, role: str) -> Cell:
    slug = unique_slug("matrix")

    async def snapshot() -> int:
        path = f"/api/v1/timebanks/{slug}"
        return (await ctx.request("GET", path, ctx.world.admin.headers)).status_code

    async def check(response: Response) -> str | None:
        return _expect("GET of the new timebank", await snapshot(), 200)

    return Cell(body={"slug": slug, "name": "Matrix Timebank"}, snapshot=snapshot, check=check)


async def update_timebank(ctx: Ctx, role: str) -> Cell:
    name = f"Riverside ({role})"

    async def snapshot() -> str:
        return (await ctx.seen_by_admin(ctx.base))["name"]

    async def check(response: Response) -> str | None:
        return _expect("the name", await snapshot(), name)

    return Cell(body={"name": name}, snapshot=snapshot, check=check)


async def _count(ctx: Ctx, path: str) -> int:
    seen = await ctx.seen_by_admin(path)
    return len(seen["items"] if isinstance(seen, dict) else seen)


async def add_participant(ctx: Ctx, role: str) -> Cell:
    async def snapshot() -> int:
        return await _count(ctx, f"{ctx.base}/participants?limit=200")

    return Cell(body={"display_name": f"New {role}", "kind": "member"}, snapshot=snapshot)


async def member_own_participant(ctx: Ctx, role: str) -> Cell:
    return Cell(params={"participant_id": ctx.world.member.participant_id})


async def set_roles(ctx: Ctx, role: str) -> Cell:
    # The member tries to make themselves a coordinator; the others act on someone new, so an
    # allowed change does not touch the people of the other cells.
    if role == "member":
        target = ctx.world.member
    else:
        target = await make_person(
            ctx.engine, "ren", timebank=ctx.world.timebank, roles=("member",)
        )
    roles = ["coordinator", "member"]

    async def snapshot() -> list[str]:
        return (await ctx.seen_by_admin(f"{ctx.base}/participants/{target.participant_id}"))[
            "roles"
        ]

    async def check(response: Response) -> str | None:
        return _expect("the roles", await snapshot(), roles)

    return Cell(
        params={"participant_id": target.participant_id},
        body={"roles": roles},
        snapshot=snapshot,
        check=check,
    )


async def _details_target(ctx: Ctx, role: str) -> Person:
    """The member's own participant for the member (refused even that), someone new for the
    others, so an allowed change touches nobody of another cell."""
    if role == "member":
        return ctx.world.member
    return await make_person(ctx.engine, "una", timebank=ctx.world.timebank, roles=("member",))


async def edit_details(ctx: Ctx, role: str) -> Cell:
    target = await _details_target(ctx, role)
    phone = f"01234 {ROLES.index(role):06d}"
    path = f"{ctx.base}/participants/{target.participant_id}"

    async def snapshot() -> tuple[str | None, str]:
        seen = await ctx.seen_by_admin(path)
        return seen["phone"], seen["contact_preference"]

    async def check(response: Response) -> str | None:
        return _expect("phone and preference", await snapshot(), (phone, "text"))

    return Cell(
        params={"participant_id": target.participant_id},
        body={"phone": phone, "contact_preference": "text"},
        snapshot=snapshot,
        check=check,
    )


def set_active(active: bool) -> Callable[[Ctx, str], Awaitable[Cell]]:
    async def setup(ctx: Ctx, role: str) -> Cell:
        target = await _details_target(ctx, role)
        path = f"{ctx.base}/participants/{target.participant_id}"
        if active:  # someone deactivated, to reactivate
            await ctx.ok("POST", f"{path}/deactivate", ctx.world.admin)

        async def snapshot() -> bool:
            return (await ctx.seen_by_admin(path))["deactivated_at"] is None

        async def check(response: Response) -> str | None:
            return _expect("active", await snapshot(), active)

        return Cell(
            params={"participant_id": target.participant_id}, snapshot=snapshot, check=check
        )

    return setup


async def reinvite(ctx: Ctx, role: str) -> Cell:
    invitee = await ctx.invitee()

    async def check(response: Response) -> str | None:
        token = response.json().get("invitation_token")
        return None if token and token != invitee["invitation_token"] else "no fresh invitation"

    return Cell(params={"participant_id": invitee["id"]}, check=check)


async def invite_staff(ctx: Ctx, role: str) -> Cell:
    async def check(response: Response) -> str | None:
        return _expect("roles", response.json().get("roles"), ["funder"])

    return Cell(
        body={"email": f"{unique_slug('fae')}@example.org", "roles": ["funder"]}, check=check
    )


async def set_staff_roles(ctx: Ctx, role: str) -> Cell:
    # Someone new, staff of the timebank (a funder), made a coordinator too.
    target = await make_person(ctx.engine, "sol", timebank=ctx.world.timebank, roles=("funder",))
    roles = ["coordinator", "funder"]

    async def snapshot() -> list[str]:
        staff = await ctx.seen_by_admin(f"{ctx.base}/staff")
        return next(s["roles"] for s in staff if s["user_id"] == target.user_id)

    async def check(response: Response) -> str | None:
        return _expect("the roles", await snapshot(), roles)

    return Cell(
        params={"user_id": target.user_id}, body={"roles": roles}, snapshot=snapshot, check=check
    )


async def add_category(ctx: Ctx, role: str) -> Cell:
    async def snapshot() -> int:
        return await _count(ctx, f"{ctx.base}/categories")

    return Cell(body={"slug": unique_slug("cat"), "name": "Matrix"}, snapshot=snapshot)


async def log_exchange(ctx: Ctx, role: str) -> Cell:
    async def snapshot() -> int:
        return await _count(ctx, f"{ctx.base}/exchanges?limit=200")

    async def check(response: Response) -> str | None:
        # A member's own exchange waits for the other party; one logged on behalf does not.
        expected = "logged" if role == "member" else "awaiting_approval"
        return _expect("the state", response.json()["state"], expected)

    body = exchange_body(ctx.world.member, ctx.world.other_member, 30)
    return Cell(body=body, snapshot=snapshot, check=check)


async def read_exchange(ctx: Ctx, role: str) -> Cell:
    return Cell(params={"exchange_id": await ctx.exchange("logged")})


async def bulk_approve(ctx: Ctx, role: str) -> Cell:
    exchange_id = await ctx.exchange("awaiting_approval")

    async def check(response: Response) -> str | None:
        [outcome] = response.json()["results"]
        return _expect("the outcome", (outcome["state"], outcome.get("error")), ("approved", None))

    return Cell(
        body={"ids": [exchange_id]}, snapshot=ctx.exchange_snapshot(exchange_id), check=check
    )


def decision(from_state: str, to_state: str) -> Callable[[Ctx, str], Awaitable[Cell]]:
    async def setup(ctx: Ctx, role: str) -> Cell:
        exchange_id = await ctx.exchange(from_state)

        async def check(response: Response) -> str | None:
            return _expect("the state", response.json()["state"], to_state)

        return Cell(
            params={"exchange_id": exchange_id},
            body={"reason": "checked by the authorisation matrix"},
            snapshot=ctx.exchange_snapshot(exchange_id),
            check=check,
        )

    return setup


async def set_limits(ctx: Ctx, role: str) -> Cell:
    member = ctx.world.member
    floor = -700 - ROLES.index(role)  # each caller's own change, to see whose went through

    async def snapshot() -> int:
        path = f"{ctx.base}/participants/{member.participant_id}/balance"
        return (await ctx.seen_by_admin(path))["floor_minutes"]

    async def check(response: Response) -> str | None:
        recorded = response.json()
        person = ctx.person(role)
        assert person is not None
        return _expect(
            "the record and the balance",
            (recorded["floor_after"], recorded["changed_by_user_id"], await snapshot()),
            (floor, person.user_id, floor),
        )

    return Cell(
        params={"participant_id": member.participant_id},
        body={"floor_minutes": floor, "ceiling_minutes": 6000, "reason": "agreed at the meeting"},
        snapshot=snapshot,
        check=check,
    )


async def flags(ctx: Ctx, role: str) -> Cell:
    async def check(response: Response) -> str | None:
        return _expect("the flagged accounts", response.json(), [])

    return Cell(check=check)


async def verify(ctx: Ctx, role: str) -> Cell:
    async def check(response: Response) -> str | None:
        return _expect("ok", response.json()["ok"], True)

    return Cell(check=check)


async def pot_balance(ctx: Ctx) -> int:
    return (await ctx.seen_by_admin(f"{ctx.base}/pot"))["balance_minutes"]


async def newcomer(ctx: Ctx) -> Person:
    """A member of the timebank of their own, so that one caller's leaving or opening balance
    is not another's."""
    return await make_person(ctx.engine, "lee", timebank=ctx.world.timebank, roles=("member",))


async def give(ctx: Ctx, role: str) -> Cell:
    # Those with a participant give from their own account; the others grant from the pot.
    w = ctx.world
    person = ctx.person(role)
    own = person.participant_id if person is not None else None
    body: dict[str, Any] = {"from_id": own, "to_id": w.other_member.participant_id, "minutes": 5}
    if own is None or role.startswith("stranger_"):
        body = {"from_id": None, "to_id": w.member.participant_id, "minutes": 5, "note": "why"}

    async def snapshot() -> tuple[int, int]:
        balance = f"{ctx.base}/participants/{{}}/balance"
        return (
            (await ctx.seen_by_admin(balance.format(w.member.participant_id)))["balance_minutes"],
            (await ctx.seen_by_admin(balance.format(w.other_member.participant_id)))[
                "balance_minutes"
            ],
        )

    async def check(response: Response) -> str | None:
        kind = "gift" if body["from_id"] is not None else "grant"
        return _expect("the kind", response.json()["kind"], kind)

    return Cell(body=body, snapshot=snapshot, check=check)


async def leave(ctx: Ctx, role: str) -> Cell:
    # The member records their own leaving; the others someone's with 30 minutes to the pot.
    target = ctx.world.member if role == "member" else await newcomer(ctx)
    await ctx.ok(
        "PUT",
        f"{ctx.base}/participants/{target.participant_id}/opening-balance",
        ctx.world.admin,
        {"minutes": 30},
    )

    async def snapshot() -> int:
        return await pot_balance(ctx)

    async def check(response: Response) -> str | None:
        return _expect("the balance given up", response.json()["balance_minutes"], 30)

    return Cell(
        params={"participant_id": target.participant_id},
        body={"balance_to": None},
        snapshot=snapshot,
        check=check,
    )


async def set_opening(ctx: Ctx, role: str) -> Cell:
    # The member tries their own; the others someone new's.
    target = ctx.world.member if role == "member" else await newcomer(ctx)
    path = f"{ctx.base}/participants/{target.participant_id}/balance"

    async def snapshot() -> int:
        return (await ctx.seen_by_admin(path))["balance_minutes"]

    async def check(response: Response) -> str | None:
        return _expect("the balance", await snapshot(), 45)

    return Cell(
        params={"participant_id": target.participant_id},
        body={"minutes": 45},
        snapshot=snapshot,
        check=check,
    )


async def import_people(ctx: Ctx, role: str) -> Cell:
    external_id = f"import-{role}"
    csv = f"name,external_id\nNewcomer {role},{external_id}\n".encode()
    path = f"{ctx.base}/participants"

    async def snapshot() -> int:
        return len((await ctx.seen_by_admin(path))["items"])

    async def check(response: Response) -> str | None:
        return _expect("the people imported", response.json()["new"], 1)

    return Cell(
        body=Upload({"kind": "people"}, {"file": ("people.csv", csv, "text/csv")}),
        snapshot=snapshot,
        check=check,
    )


async def see_pot(ctx: Ctx, role: str) -> Cell:
    async def check(response: Response) -> str | None:
        return _expect("the pot's balance", response.json()["balance_minutes"], 0)

    return Cell(check=check)


async def reciprocity(ctx: Ctx, role: str) -> Cell:
    async def check(response: Response) -> str | None:
        rows = {row["participant_id"] for row in response.json()["rows"]}
        if role == "member":
            return _expect("rows", rows, {ctx.world.member.participant_id})
        return None if ctx.world.member.participant_id in rows else "the member's row is missing"

    return Cell(check=check)


async def contribution(ctx: Ctx, role: str) -> Cell:
    async def check(response: Response) -> str | None:
        wanted = "funder" if role == "funder" else "full"
        return _expect("view", response.json()["view"], wanted)

    return Cell(check=check)


async def chart(ctx: Ctx, role: str) -> Cell:
    async def check(response: Response) -> str | None:
        return None if "<svg" in response.text else "not an SVG"

    return Cell(params={"file": "series.svg"}, check=check)


async def export(ctx: Ctx, role: str) -> Cell:
    async def check(response: Response) -> str | None:
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            manifest = json.loads(archive.read("manifest.json"))
        return None if manifest["timebank"] == ctx.world.timebank.slug else "another timebank"

    return Cell(check=check)


SETUPS: dict[str, Callable[[Ctx, str], Awaitable[Cell]]] = {
    "GET /health": nothing,
    "GET /ready": nothing,
    "GET /metrics": nothing,
    "POST /api/v1/auth/login": login,
    "POST /api/v1/auth/invitations/accept": accept_invitation,
    "POST /api/v1/auth/logout": logout,
    "POST /api/v1/auth/password": change_password,
    "POST /api/v1/auth/sign-out-everywhere": sign_out_everywhere,
    "POST /api/v1/auth/password-reset": password_reset_cell,
    "GET /api/v1/auth/me": me,
    "GET /api/v1/auth/tokens": nothing,
    "POST /api/v1/auth/tokens": create_token,
    "DELETE /api/v1/auth/tokens/{token_id}": revoke_token,
    "POST /api/v1/timebanks": create_timebank,
    f"GET {TB}": nothing,
    f"GET {TB}/categories": nothing,
    f"PATCH {TB}": update_timebank,
    f"POST {TB}/participants": add_participant,
    f"PUT {PARTICIPANT}/roles": set_roles,
    f"PATCH {PARTICIPANT}": edit_details,
    f"POST {PARTICIPANT}/deactivate": set_active(False),
    f"POST {PARTICIPANT}/reactivate": set_active(True),
    f"POST {PARTICIPANT}/invitation": reinvite,
    f"POST {TB}/categories": add_category,
    f"POST {TB}/staff": invite_staff,
    f"GET {TB}/staff": nothing,
    f"PUT {TB}/staff/{{user_id}}/roles": set_staff_roles,
    f"GET {TB}/role-changes": nothing,
    f"GET {TB}/participants": nothing,
    f"GET {PARTICIPANT}": member_own_participant,
    f"GET {PARTICIPANT}/balance": member_own_participant,
    f"GET {PARTICIPANT}/statement": member_own_participant,
    f"POST {TB}/exchanges": log_exchange,
    f"GET {TB}/exchanges": nothing,
    f"GET {EX}": read_exchange,
    f"POST {EX}/confirm": decision("for_member", "awaiting_approval"),
    f"POST {EX}/dispute": decision("for_member", "disputed"),
    f"POST {TB}/exchanges/approve": bulk_approve,
    f"POST {EX}/approve": decision("awaiting_approval", "approved"),
    f"POST {EX}/reject": decision("awaiting_approval", "rejected"),
    f"POST {EX}/reverse": decision("approved", "reversed"),
    f"POST {EX}/cancel": decision("logged", "cancelled"),
    f"PUT {PARTICIPANT}/limits": set_limits,
    f"GET {TB}/ledger/flags": flags,
    f"GET {TB}/ledger/verify": verify,
    f"POST {TB}/gifts": give,
    f"POST {PARTICIPANT}/leave": leave,
    f"PUT {PARTICIPANT}/opening-balance": set_opening,
    f"GET {TB}/pot": see_pot,
    f"POST {TB}/imports": import_people,
    f"GET {TB}/reports/reciprocity": reciprocity,
    f"GET {TB}/reports/contribution": contribution,
    f"GET {TB}/reports/contribution/charts/{{file}}": chart,
    f"GET {TB}/export": export,
}


# --- The tests ---------------------------------------------------------------------------------


def test_the_table_and_the_setups_name_the_same_routes():
    assert set(EXPECTED) == set(SETUPS)


async def test_every_route_of_the_router_is_in_the_table_and_no_other(client):
    # The pages (out of the OpenAPI document) have their own table, in tests/web/: every
    # route is in exactly one of the two.
    from tests.web.pages import page_routes
    from tests.web.test_page_matrix import PAGES

    pages = page_routes(client.app)
    assert pages == set(PAGES), f"pages not in tests/web/test_page_matrix.py: {pages ^ set(PAGES)}"
    routes = routes_of(client.app) - pages
    assert not routes - set(EXPECTED), f"routes missing from the table: {routes - set(EXPECTED)}"
    assert not set(EXPECTED) - routes, f"the router has no such routes: {set(EXPECTED) - routes}"


@pytest.mark.parametrize("route", _routes_to_check())
async def test_who_may_call(route: str, client: AsyncTestClient, engine: AsyncEngine):
    assert route in EXPECTED, f"{route} is a route of the app but not in the table"
    assert route in SETUPS, f"{route} is in the table but SETUPS does not say what to call"
    assert route in routes_of(client.app), f"{route} is in the table but not a route of the app"
    allowed, success = EXPECTED[route]
    method, template = route.split(" ", 1)
    ctx = Ctx(client, engine, await make_world(engine))
    wrong = []
    for role in ROLES:
        cell = await SETUPS[route](ctx, role)
        path = template.format(slug=ctx.world.timebank.slug, **cell.params)
        person = ctx.person(role)
        headers = cell.headers if cell.headers is not None else (person.headers if person else {})
        before = await cell.snapshot() if cell.snapshot else None
        response = await ctx.request(method, path, headers, cell.body)
        expected = success if role in allowed else refusal(route, role)
        if response.status_code != expected:
            wrong.append(
                f"{role}: expected {expected}, got {response.status_code} {response.text[:160]}"
            )
        elif role not in allowed and _problem_type(response) != REFUSAL_TYPES.get(expected):
            wrong.append(f"{role}: {expected} as expected, but of type {_problem_type(response)}")
        elif role in allowed and cell.check and (complaint := await cell.check(response)):
            wrong.append(f"{role}: {expected} as expected, but {complaint}")
        elif role not in allowed and cell.snapshot and (after := await cell.snapshot()) != before:
            wrong.append(f"{role}: refused, yet {before!r} became {after!r}")
    assert not wrong, f"{route}:\n  " + "\n  ".join(wrong)
