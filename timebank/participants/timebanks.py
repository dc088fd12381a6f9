"""Timebanks, their policy and their categories; and what every part of the participants
service shares: who may manage a timebank, and whose an idempotency key is."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.auth.schemas import Principal, TimebankAccess
from timebank.db.transactions import in_transaction, transaction
from timebank.errors import (
    Conflict,
    Forbidden,
    ValidationFailed,
    field_error,
)
from timebank.ledger import idempotency
from timebank.participants import repository
from timebank.participants.schemas import (
    DEFAULT_CATEGORIES,
    CategoryCreate,
    CategoryPublic,
    PolicyFields,
    TimebankCreate,
    TimebankPolicy,
    TimebankPublic,
    TimebankRecord,
    TimebankUpdate,
)
from timebank.settings import Settings

DEFAULT_INVITATION_DAYS = 14


def author_of(principal: Principal) -> str:
    """Who an idempotency key belongs to."""
    return f"user:{principal.user_id}"


def require_manager(access: TimebankAccess, what: str) -> None:
    if not access.can_manage:
        raise Forbidden(f"only a coordinator of this timebank (or an admin) can {what}")


def _validation_failed(error: ValidationError) -> ValidationFailed:
    problems = [
        field_error(".".join(str(part) for part in e["loc"]), e["msg"]) for e in error.errors()
    ]
    return ValidationFailed(
        "; ".join(f"{p['key']}: {p['message']}" for p in problems) or str(error), errors=problems
    )


class Timebanks:
    """Create and run timebanks: their policy and categories. Reads go the way writes do,
    each one transaction (``timebank.db.transactions``): retried when the database is briefly
    away, and a refusal by the database comes out as a typed error (a 4xx), never a 500."""

    def __init__(self, engine: AsyncEngine, settings: Settings | None = None) -> None:
        self._engine = engine
        self._invitation_days = (
            settings.invitation_days if settings is not None else DEFAULT_INVITATION_DAYS
        )

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @transaction
    async def create_timebank(
        self,
        conn: AsyncConnection,
        slug: str,
        name: str,
        policy: TimebankPolicy | None = None,
    ) -> TimebankRecord:
        """Create a timebank with its community fund account and the default categories."""
        return await _insert_timebank(conn, slug, name, policy or TimebankPolicy())

    async def open_timebank(
        self, principal: Principal, data: TimebankCreate, idempotency_key: str | None = None
    ) -> TimebankPublic:
        """Create a timebank (site admins only). Retried with the same ``Idempotency-Key`` and
        body, it answers with the timebank first created; with another body, it refuses."""
        if not principal.is_admin:
            raise Forbidden("only a site admin can create a timebank")
        return TimebankPublic.of(await self._open_timebank(principal, data, idempotency_key))

    @transaction
    async def _open_timebank(
        self,
        conn: AsyncConnection,
        principal: Principal,
        data: TimebankCreate,
        idempotency_key: str | None,
    ) -> TimebankRecord:
        author = author_of(principal)
        request_hash = idempotency.fingerprint("create_timebank", data.model_dump(mode="json"))
        if idempotency_key is not None:
            answered = await idempotency.claim_new_timebank_key(
                conn, author, idempotency_key, request_hash
            )
            if answered is not None:
                return await repository.get_timebank_by_id(conn, answered["timebank_id"])
        record = await _insert_timebank(conn, data.slug, data.name, data.to_policy())
        if idempotency_key is not None:
            await idempotency.claim_key(conn, record.id, author, idempotency_key, request_hash)
            await idempotency.answer_key(
                conn, record.id, author, idempotency_key, {"timebank_id": record.id}
            )
        return record

    async def get_timebank(self, slug: str) -> TimebankRecord:
        return await in_transaction(self._engine, repository.get_timebank, slug)

    async def show_timebank(self, access: TimebankAccess) -> TimebankPublic:
        """The timebank and its policy, for anyone with a part in it."""
        return TimebankPublic.of(
            await in_transaction(self._engine, repository.get_timebank_by_id, access.timebank_id)
        )

    async def update_timebank(
        self, access: TimebankAccess, changes: TimebankUpdate
    ) -> TimebankPublic:
        """Rename a timebank or change its policy (its coordinators and admins). New limits
        apply to accounts opened afterwards."""
        require_manager(access, "change this timebank")
        given = changes.model_dump(exclude_unset=True)
        if "name" in given and (given["name"] is None or not given["name"].strip()):
            raise ValidationFailed("name: a timebank needs a name", field="name")
        return TimebankPublic.of(await self._update_timebank(access.timebank_id, given))

    @transaction
    async def _update_timebank(
        self, conn: AsyncConnection, timebank_id: int, given: dict[str, Any]
    ) -> TimebankRecord:
        current = await repository.get_timebank_by_id(conn, timebank_id, for_update=True)
        merged = {**current.policy.as_dict(), **{k: v for k, v in given.items() if k != "name"}}
        try:
            policy = PolicyFields.model_validate(merged).to_policy()
        except ValidationError as error:
            raise _validation_failed(error) from error
        name = given["name"].strip() if "name" in given else current.name
        await repository.update_timebank(conn, current.id, name, policy)
        return await repository.get_timebank_by_id(conn, current.id)

    # --- Categories ----------------------------------------------------------------------------

    async def list_categories(self, access: TimebankAccess) -> list[CategoryPublic]:
        """The service categories of the timebank, for anyone with a part in it."""
        rows = await in_transaction(self._engine, repository.list_categories, access.timebank_id)
        return [CategoryPublic(**row) for row in rows]

    async def add_category(self, access: TimebankAccess, data: CategoryCreate) -> CategoryPublic:
        """Add a service category (coordinators and admins)."""
        require_manager(access, "add categories")
        row = await in_transaction(
            self._engine, repository.insert_category, access.timebank_id, data.slug, data.name
        )
        if row is None:
            raise Conflict(f"this timebank already has a category {data.slug!r}", field="slug")
        return CategoryPublic(**row)


async def _insert_timebank(
    conn: AsyncConnection, slug: str, name: str, policy: TimebankPolicy
) -> TimebankRecord:
    if await repository.slug_taken(conn, slug):
        raise Conflict(f"a timebank with slug {slug!r} already exists", field="slug")
    record = await repository.insert_timebank(conn, slug, name, policy)
    await repository.insert_categories(conn, record.id, DEFAULT_CATEGORIES)
    return record
