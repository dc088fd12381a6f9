"""Timebanks, participants, invitations, roles and categories: who may do what (DESIGN.md §4)
is decided here, for every caller; each write is one short transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.auth import invitations_repository
from timebank.auth import repository as auth_repository
from timebank.auth.roles import participant_roles_problem
from timebank.auth.schemas import Principal, Role, TimebankAccess, has_part
from timebank.auth.secrets import new_token
from timebank.db.transactions import run_in_transaction
from timebank.errors import (
    Conflict,
    Forbidden,
    IdempotencyMismatch,
    NotFound,
    ValidationFailed,
    field_error,
)
from timebank.ledger import repository as ledger_repository
from timebank.participants import repository
from timebank.participants.schemas import (
    DEFAULT_CATEGORIES,
    CategoryCreate,
    CategoryPublic,
    InvitationPublic,
    ParticipantCreate,
    ParticipantCreated,
    ParticipantDirectoryEntry,
    ParticipantDirectoryPage,
    ParticipantKind,
    ParticipantPage,
    ParticipantPublic,
    ParticipantRecord,
    PolicyFields,
    RoleChangePublic,
    RolesUpdate,
    StaffInvite,
    StaffPublic,
    StaffRolesUpdate,
    TimebankCreate,
    TimebankPolicy,
    TimebankPublic,
    TimebankRecord,
    TimebankUpdate,
)
from timebank.settings import Settings

T = TypeVar("T")

DEFAULT_INVITATION_DAYS = 14
MAX_PAGE = 200


def _author(principal: Principal) -> str:
    """Who an idempotency key belongs to."""
    return f"user:{principal.user_id}"


def _require_manager(access: TimebankAccess, what: str) -> None:
    if not access.can_manage:
        raise Forbidden(f"only a coordinator of this timebank (or an admin) can {what}")


def _refuse_own_roles(access: TimebankAccess, user_id: int) -> None:
    if user_id == access.principal.user_id:
        raise Forbidden("nobody changes their own roles: ask another coordinator or an admin")


def _validation_failed(error: ValidationError) -> ValidationFailed:
    problems = [
        field_error(".".join(str(part) for part in e["loc"]), e["msg"]) for e in error.errors()
    ]
    return ValidationFailed(
        "; ".join(f"{p['key']}: {p['message']}" for p in problems) or str(error), errors=problems
    )


class Participants:
    """Create and run timebanks: policy, participants with their accounts and welcome hours,
    users, roles and invitations, categories."""

    def __init__(self, engine: AsyncEngine, settings: Settings | None = None) -> None:
        self._engine = engine
        self._invitation_days = (
            settings.invitation_days if settings is not None else DEFAULT_INVITATION_DAYS
        )

    async def _read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Reads go the way writes do: retried when the database is briefly away, and a
        refusal by the database comes out as a typed error (a 4xx), never a 500."""
        return await run_in_transaction(self._engine, work)

    # --- Timebanks -----------------------------------------------------------------------------

    async def create_timebank(
        self, slug: str, name: str, policy: TimebankPolicy | None = None
    ) -> TimebankRecord:
        """Create a timebank with its community fund account and the default categories."""

        async def work(conn: AsyncConnection) -> TimebankRecord:
            return await self._insert_timebank(conn, slug, name, policy or TimebankPolicy())

        return await run_in_transaction(self._engine, work)

    async def _insert_timebank(
        self, conn: AsyncConnection, slug: str, name: str, policy: TimebankPolicy
    ) -> TimebankRecord:
        if await repository.slug_taken(conn, slug):
            raise Conflict(f"a timebank with slug {slug!r} already exists", field="slug")
        record = await repository.insert_timebank(conn, slug, name, policy)
        await repository.insert_categories(conn, record.id, DEFAULT_CATEGORIES)
        return record

    async def open_timebank(
        self, principal: Principal, data: TimebankCreate, idempotency_key: str | None = None
    ) -> TimebankPublic:
        """Create a timebank (site admins only). Retried with the same ``Idempotency-Key`` and
        body, it answers with the timebank first created; with another body, it refuses."""
        if not principal.is_admin:
            raise Forbidden("only a site admin can create a timebank")
        author = _author(principal)
        request = data.model_dump(mode="json")
        request_hash = ledger_repository.request_hash("create_timebank", request)

        async def work(conn: AsyncConnection) -> TimebankRecord:
            if idempotency_key is not None:
                await repository.lock_key(conn, author, idempotency_key)
                earlier = await repository.keys_of_author(conn, author, idempotency_key)
                for use in earlier:
                    if bytes(use["request_hash"]) == request_hash:
                        timebank_id = ledger_repository.stored_result(use["result"])["timebank_id"]
                        return await repository.get_timebank_by_id(conn, timebank_id)
                if earlier:
                    raise IdempotencyMismatch(
                        f"idempotency key {idempotency_key!r} was already used for a "
                        "different request"
                    )
            record = await self._insert_timebank(conn, data.slug, data.name, data.to_policy())
            if idempotency_key is not None:
                await ledger_repository.claim_key(
                    conn, record.id, author, idempotency_key, request_hash
                )
                await ledger_repository.answer_key(
                    conn, record.id, author, idempotency_key, {"timebank_id": record.id}
                )
            return record

        return TimebankPublic.of(await run_in_transaction(self._engine, work))

    async def get_timebank(self, slug: str) -> TimebankRecord:
        async def work(conn: AsyncConnection) -> TimebankRecord:
            return await repository.get_timebank(conn, slug)

        return await self._read(work)

    async def show_timebank(self, access: TimebankAccess) -> TimebankPublic:
        """The timebank and its policy, for anyone with a part in it."""

        async def work(conn: AsyncConnection) -> TimebankRecord:
            return await repository.get_timebank_by_id(conn, access.timebank_id)

        return TimebankPublic.of(await self._read(work))

    async def update_timebank(
        self, access: TimebankAccess, changes: TimebankUpdate
    ) -> TimebankPublic:
        """Rename a timebank or change its policy (its coordinators and admins). New limits
        apply to accounts opened afterwards."""
        _require_manager(access, "change this timebank")
        given = changes.model_dump(exclude_unset=True)
        if "name" in given and (given["name"] is None or not given["name"].strip()):
            raise ValidationFailed("name: a timebank needs a name", field="name")

        async def work(conn: AsyncConnection) -> TimebankRecord:
            current = await repository.get_timebank_by_id(conn, access.timebank_id, for_update=True)
            merged = {**current.policy.as_dict(), **{k: v for k, v in given.items() if k != "name"}}
            try:
                policy = PolicyFields.model_validate(merged).to_policy()
            except ValidationError as error:
                raise _validation_failed(error) from error
            name = given["name"].strip() if "name" in given else current.name
            await repository.update_timebank(conn, current.id, name, policy)
            return await repository.get_timebank_by_id(conn, current.id)

        return TimebankPublic.of(await run_in_transaction(self._engine, work))

    # --- Participants --------------------------------------------------------------------------

    async def enrol(
        self,
        timebank: TimebankRecord,
        kind: ParticipantKind,
        display_name: str,
        *,
        joined_on: date | None = None,
    ) -> ParticipantRecord:
        """Enrol a participant: an account with the timebank's limits, and its welcome grant
        from the community fund, in one transaction."""

        async def work(conn: AsyncConnection) -> ParticipantRecord:
            return await self._enrol(conn, timebank, kind, display_name, joined_on, None)

        return await run_in_transaction(self._engine, work)

    async def _enrol(
        self,
        conn: AsyncConnection,
        timebank: TimebankRecord,
        kind: str,
        display_name: str,
        joined_on: date | None,
        user_id: int | None,
    ) -> ParticipantRecord:
        participant_id, joined, account_id = await repository.insert_participant(
            conn, timebank, kind, display_name, joined_on, user_id
        )
        if timebank.policy.welcome_grant_minutes > 0:
            await ledger_repository.post_transfer(
                conn,
                timebank_id=timebank.id,
                debit_account_id=timebank.community_fund_account_id,
                credit_account_id=account_id,
                minutes=timebank.policy.welcome_grant_minutes,
                kind="grant",
                memo="Welcome hours",
                key=None,
            )
        return ParticipantRecord(
            id=participant_id,
            timebank_id=timebank.id,
            kind=kind,
            display_name=display_name,
            joined_on=joined,
            account_id=account_id,
        )

    async def add_participant(
        self,
        access: TimebankAccess,
        data: ParticipantCreate,
        idempotency_key: str | None = None,
    ) -> ParticipantCreated:
        """Add a member, professional or organisation (coordinators and admins), with an
        account and the welcome hours. With an email, also a one-time invitation for that
        address (its token is in this answer only): whoever accepts it takes part as this
        participant and is granted the roles (default: member). No user is looked up by the
        email: the answer is the same whether the address is known elsewhere or not."""
        _require_manager(access, "add participants")
        author = _author(access.principal)
        request_hash = ledger_repository.request_hash(
            "create_participant", data.model_dump(mode="json")
        )
        roles = sorted(set(data.roles if data.roles is not None else ["member"]))
        invited_roles: list[Role] = roles if data.email is not None else []  # type: ignore[assignment]

        async def work(conn: AsyncConnection) -> ParticipantCreated:
            if idempotency_key is not None:
                earlier = await ledger_repository.claim_key(
                    conn, access.timebank_id, author, idempotency_key, request_hash
                )
                if earlier is not None:
                    participant_id = earlier["participant_id"]
                    row = await repository.get_participant(conn, access.timebank_id, participant_id)
                    return ParticipantCreated(**row, invited_roles=invited_roles)
            timebank = await repository.get_timebank_by_id(conn, access.timebank_id)
            if data.email is not None:
                await self._refuse_a_second_participant(conn, timebank.id, data.email)
            record = await self._enrol(
                conn, timebank, data.kind, data.display_name, data.joined_on, None
            )
            invitation = None
            if data.email is not None:
                invitation = await self._invite(conn, access, record.id, data.email, roles)
            if idempotency_key is not None:
                await ledger_repository.answer_key(
                    conn, timebank.id, author, idempotency_key, {"participant_id": record.id}
                )
            row = await repository.get_participant(conn, timebank.id, record.id)
            return ParticipantCreated(
                **row,
                invited_roles=invited_roles,
                invitation_token=invitation.invitation_token if invitation else None,
                invitation_expires_at=invitation.expires_at if invitation else None,
            )

        return await run_in_transaction(self._engine, work)

    @staticmethod
    async def _refuse_a_second_participant(
        conn: AsyncConnection, timebank_id: int, email: str
    ) -> None:
        """One address is one participant per timebank (this timebank's own participants
        only: nothing is told about any other)."""
        existing = await repository.participant_with_email(conn, timebank_id, email)
        if existing is not None:
            raise Conflict(
                f"{email} is already participant {existing} of this timebank",
                field="email",
                participant_id=existing,
            )

    async def _invite(
        self,
        conn: AsyncConnection,
        access: TimebankAccess,
        participant_id: int | None,
        email: str,
        roles: list[str],
    ) -> InvitationPublic:
        """A fresh invitation for ``email`` (as ``participant_id``, or as staff); earlier open
        ones for the same participant (or, for staff, the same address) stop working."""
        secret, token_hash = new_token()
        expires_at = datetime.now(UTC) + timedelta(days=self._invitation_days)
        await repository.expire_open_invitations(
            conn, access.timebank_id, participant_id=participant_id, email=email
        )
        await invitations_repository.insert_invitation(
            conn,
            timebank_id=access.timebank_id,
            participant_id=participant_id,
            email=email,
            roles=roles,
            token_hash=token_hash,
            invited_by=access.principal.user_id,
            expires_at=expires_at,
        )
        return InvitationPublic(
            invitation_token=secret,
            expires_at=expires_at,
            roles=roles,  # type: ignore[arg-type]
        )

    async def list_participants(
        self,
        access: TimebankAccess,
        *,
        q: str | None = None,
        after_id: int | None = None,
        limit: int = 50,
    ) -> ParticipantPage | ParticipantDirectoryPage:
        """Coordinators and admins: everyone, with balances and roles. Members: a directory
        (id, name, kind) to pick whom they exchanged with. Funders see aggregates only."""
        full = access.can_manage
        if not full and access.member_participant_id is None:
            raise Forbidden("funders see aggregate reports, not the list of participants")
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        name_contains = q.strip() if q and q.strip() else None

        async def work(conn: AsyncConnection) -> list[Mapping[str, Any]]:
            return await repository.list_participants(
                conn,
                access.timebank_id,
                full=full,
                name_contains=name_contains,
                after_id=after_id,
                limit=limit + 1,
            )

        rows = await self._read(work)
        next_after_id = rows[limit - 1]["id"] if len(rows) > limit else None
        rows = rows[:limit]
        if full:
            return ParticipantPage(
                view="full",
                items=[ParticipantPublic(**row) for row in rows],
                next_after_id=next_after_id,
            )
        return ParticipantDirectoryPage(
            view="directory",
            items=[ParticipantDirectoryEntry(**row) for row in rows],
            next_after_id=next_after_id,
        )

    async def show_participant(
        self, access: TimebankAccess, participant_id: int
    ) -> ParticipantPublic:
        """One participant: coordinators and admins see anyone, a member only themselves."""
        if not access.can_manage and access.member_participant_id is None:
            raise Forbidden("funders see aggregate reports, not participants")

        async def work(conn: AsyncConnection) -> Mapping[str, Any]:
            return await repository.get_participant(conn, access.timebank_id, participant_id)

        row = await self._read(work)
        if not access.can_manage and access.member_participant_id != participant_id:
            raise Forbidden("members can see their own details only")
        return ParticipantPublic(**row)

    async def set_roles(
        self, access: TimebankAccess, participant_id: int, data: RolesUpdate
    ) -> ParticipantPublic:
        """Set the roles of whoever joined as a participant (coordinators, admins): never
        one's own, never 'funder' (funders are staff). The change is recorded; someone left
        with no role anywhere is signed out everywhere."""
        _require_manager(access, "change roles")
        roles: list[str] = sorted(set(data.roles))
        problem = participant_roles_problem(roles)
        if problem:
            raise ValidationFailed(problem, field="roles")

        async def work(conn: AsyncConnection) -> ParticipantPublic:
            row = await repository.get_participant(conn, access.timebank_id, participant_id)
            user_id = row["user_id"]
            if user_id is None:
                raise Conflict(
                    "nobody has joined as this participant yet: the roles of their invitation "
                    "are granted when it is accepted",
                    participant_id=participant_id,
                )
            _refuse_own_roles(access, user_id)
            await self._change_roles(conn, access, user_id, participant_id, roles)
            return ParticipantPublic(
                **await repository.get_participant(conn, access.timebank_id, participant_id)
            )

        return await run_in_transaction(self._engine, work)

    @staticmethod
    async def _change_roles(
        conn: AsyncConnection,
        access: TimebankAccess,
        user_id: int,
        participant_id: int | None,
        roles: list[str],
    ) -> None:
        current = await auth_repository.lock_roles(conn, access.timebank_id, user_id)
        if current == roles:
            return
        await auth_repository.revoke_roles_except(conn, access.timebank_id, user_id, roles)
        for role in roles:
            await auth_repository.grant_role(conn, access.timebank_id, user_id, role)
        await auth_repository.record_role_change(
            conn,
            timebank_id=access.timebank_id,
            user_id=user_id,
            participant_id=participant_id,
            changed_by=access.principal.user_id,
            invitation_id=None,
            from_roles=current,
            to_roles=roles,
        )
        if not roles and not has_part(*await auth_repository.roles_anywhere(conn, user_id)):
            # Nothing left to act on anywhere: their sessions and tokens end with it.
            await auth_repository.revoke_tokens(conn, user_id)

    async def reinvite(self, access: TimebankAccess, participant_id: int) -> InvitationPublic:
        """A fresh one-time invitation for a participant nobody has joined as yet, for the
        address and roles of their last one; earlier open invitations stop working."""
        _require_manager(access, "invite people")

        async def work(conn: AsyncConnection) -> InvitationPublic:
            row = await repository.get_participant(conn, access.timebank_id, participant_id)
            if row["signed_up"]:
                raise Conflict(
                    "someone has already joined as this participant; they sign in",
                    participant_id=participant_id,
                )
            last = await repository.last_invitation(conn, access.timebank_id, participant_id)
            if last is None:
                raise Conflict(
                    "this participant has no email, so there is nobody to invite",
                    participant_id=participant_id,
                )
            return await self._invite(
                conn, access, participant_id, last["email"], list(last["roles"])
            )

        return await run_in_transaction(self._engine, work)

    # --- Staff: roles without a participant ---------------------------------------------------

    async def invite_staff(self, access: TimebankAccess, data: StaffInvite) -> InvitationPublic:
        """Invite a coordinator or funder who takes no part in exchanges (no participant):
        the same one-time invitation, the same answer whatever the address."""
        _require_manager(access, "invite staff")
        roles: list[str] = sorted(set(data.roles))

        async def work(conn: AsyncConnection) -> InvitationPublic:
            return await self._invite(conn, access, None, data.email, roles)

        return await run_in_transaction(self._engine, work)

    async def list_staff(self, access: TimebankAccess) -> list[StaffPublic]:
        """Users with roles in this timebank and no participant in it (coordinators, admins)."""
        _require_manager(access, "see the staff")

        async def work(conn: AsyncConnection) -> list[Mapping[str, Any]]:
            return await repository.list_staff(conn, access.timebank_id)

        return [StaffPublic(**row) for row in await self._read(work)]

    async def set_staff_roles(
        self, access: TimebankAccess, user_id: int, data: StaffRolesUpdate
    ) -> StaffPublic | None:
        """Set the roles of a staff member (coordinators, admins; never one's own): None when
        [] leaves them no role here (they are no longer staff)."""
        _require_manager(access, "change roles")
        roles: list[str] = sorted(set(data.roles))

        async def work(conn: AsyncConnection) -> StaffPublic | None:
            staff = await repository.staff_member(conn, access.timebank_id, user_id)
            if staff is None:
                raise NotFound(f"no staff member {user_id} in this timebank")
            _refuse_own_roles(access, user_id)
            await self._change_roles(conn, access, user_id, None, roles)
            found = await repository.staff_member(conn, access.timebank_id, user_id)
            return StaffPublic(**found) if found is not None else None

        return await run_in_transaction(self._engine, work)

    async def role_changes(
        self,
        access: TimebankAccess,
        *,
        participant_id: int | None = None,
        user_id: int | None = None,
    ) -> list[RoleChangePublic]:
        """The recorded role changes of this timebank, oldest first (coordinators, admins)."""
        _require_manager(access, "see role changes")

        async def work(conn: AsyncConnection) -> list[Mapping[str, Any]]:
            return await auth_repository.role_changes(
                conn, access.timebank_id, participant_id=participant_id, user_id=user_id
            )

        return [RoleChangePublic(**row) for row in await self._read(work)]

    # --- Categories ----------------------------------------------------------------------------

    async def list_categories(self, access: TimebankAccess) -> list[CategoryPublic]:
        """The service categories of the timebank, for anyone with a part in it."""

        async def work(conn: AsyncConnection) -> list[Mapping[str, Any]]:
            return await repository.list_categories(conn, access.timebank_id)

        return [CategoryPublic(**row) for row in await self._read(work)]

    async def add_category(self, access: TimebankAccess, data: CategoryCreate) -> CategoryPublic:
        """Add a service category (coordinators and admins)."""
        _require_manager(access, "add categories")

        async def work(conn: AsyncConnection) -> CategoryPublic:
            row = await repository.insert_category(conn, access.timebank_id, data.slug, data.name)
            if row is None:
                raise Conflict(f"this timebank already has a category {data.slug!r}", field="slug")
            return CategoryPublic(**row)

        return await run_in_transaction(self._engine, work)
