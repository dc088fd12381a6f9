"""Building people for API tests: users with roles, participants and bearer tokens, made the
way the service makes them (hashed password, hashed token), straight into the database."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import unique_slug
from timebank.auth import repository as auth_repository
from timebank.auth.secrets import hash_password, new_token
from timebank.participants.schemas import TimebankPolicy, TimebankRecord
from timebank.participants.service import Participants

PASSWORD = "correct horse battery"
_PASSWORD_HASH = hash_password(PASSWORD)
_people = itertools.count(1)


@dataclass
class Person:
    user_id: int
    email: str
    token: str
    participant_id: int | None = None
    account_id: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_person(
    engine: AsyncEngine,
    label: str,
    *,
    is_admin: bool = False,
    timebank: TimebankRecord | None = None,
    roles: tuple[str, ...] = (),
    kind: str = "member",
    participant: bool = False,
) -> Person:
    """A user with a password and an API token; with ``timebank``, also the given roles there,
    and (for the member role, or with ``participant``) a participant of ``kind`` linked to
    them."""
    email = f"{label}-{next(_people)}-{unique_slug('p')}@example.org"
    participant_record = None
    if timebank is not None and ("member" in roles or participant):
        participant_record = await Participants(engine).enrol(timebank, kind, label.title())
    secret, token_hash = new_token()
    async with engine.begin() as conn:
        user_id = await auth_repository.insert_user(
            conn,
            email=email,
            display_name=label.title(),
            password_hash=_PASSWORD_HASH,
            is_admin=is_admin,
        )
        await auth_repository.insert_token(
            conn,
            user_id=user_id,
            kind="api",
            name="tests",
            token_hash=token_hash,
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
        for role in roles:
            assert timebank is not None
            await auth_repository.grant_role(conn, timebank.id, user_id, role)
        if participant_record is not None:
            await conn.execute(
                text("UPDATE participants SET user_id = :user_id WHERE id = :id"),
                {"user_id": user_id, "id": participant_record.id},
            )
    return Person(
        user_id=user_id,
        email=email,
        token=secret,
        participant_id=participant_record.id if participant_record else None,
        account_id=participant_record.account_id if participant_record else None,
    )


@dataclass
class World:
    """Two timebanks and everyone the role table of DESIGN.md §4 speaks of."""

    timebank: TimebankRecord
    other_timebank: TimebankRecord
    admin: Person
    coordinator: Person
    member: Person
    other_member: Person
    funder: Person
    stranger_member: Person
    stranger_coordinator: Person
    people: dict[str, Person] = field(default_factory=dict)
    # A coordinator only (no member role) with a participant of their own: staff on the ledger.
    staff: Person | None = None


async def make_world(engine: AsyncEngine, policy: TimebankPolicy | None = None) -> World:
    participants = Participants(engine)
    tb = await participants.create_timebank(unique_slug("tb"), "Riverside Timebank", policy)
    other = await participants.create_timebank(unique_slug("tb"), "Hillside Timebank", policy)
    world = World(
        timebank=tb,
        other_timebank=other,
        admin=await make_person(engine, "admin", is_admin=True),
        coordinator=await make_person(engine, "coordinator", timebank=tb, roles=("coordinator",)),
        member=await make_person(engine, "ada", timebank=tb, roles=("member",)),
        other_member=await make_person(engine, "bea", timebank=tb, roles=("member",)),
        funder=await make_person(engine, "funder", timebank=tb, roles=("funder",)),
        stranger_member=await make_person(engine, "cy", timebank=other, roles=("member",)),
        stranger_coordinator=await make_person(
            engine, "dee", timebank=other, roles=("coordinator",)
        ),
    )
    world.staff = await make_person(
        engine, "sam", timebank=tb, roles=("coordinator",), participant=True
    )
    world.people = {
        "admin": world.admin,
        "coordinator": world.coordinator,
        "member": world.member,
        "other_member": world.other_member,
        "funder": world.funder,
        "stranger_member": world.stranger_member,
        "stranger_coordinator": world.stranger_coordinator,
        "staff": world.staff,
    }
    return world
