"""Participants: enrolled with an account and the welcome hours, invited to join with an
account of their own, listed and shown."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.auth import invitations_repository
from timebank.auth.schemas import Role, TimebankAccess
from timebank.auth.secrets import new_token
from timebank.db.transactions import in_transaction, transaction
from timebank.errors import Conflict, Forbidden, ValidationFailed
from timebank.ledger import idempotency
from timebank.ledger import repository as ledger_repository
from timebank.participants import details_repository, repository
from timebank.participants.contact import contact_problem, default_preference
from timebank.participants.schemas import (
    ParticipantCreate,
    ParticipantCreated,
    ParticipantDirectoryEntry,
    ParticipantDirectoryPage,
    ParticipantKind,
    ParticipantPage,
    ParticipantPublic,
    ParticipantRecord,
    TimebankRecord,
)
from timebank.participants.staff_schemas import InvitationPublic
from timebank.participants.timebanks import Timebanks, author_of, require_manager

MAX_PAGE = 200


class Enrolment(Timebanks):
    """Participants with their accounts and welcome hours, and the invitations to join as
    one."""

    @transaction
    async def enrol(
        self,
        conn: AsyncConnection,
        timebank: TimebankRecord,
        kind: ParticipantKind,
        display_name: str,
        *,
        joined_on: date | None = None,
    ) -> ParticipantRecord:
        """Enrol a participant: an account with the timebank's limits, and its welcome grant
        from the community fund, in one transaction."""
        return await _enrol(conn, timebank, kind, display_name, joined_on)

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
        require_manager(access, "add participants")
        if data.contact_preference is not None:
            require_reachable(data.contact_preference, data.email, data.phone, data.postal_address)
        return await self._add_participant(access, data, idempotency_key)

    @transaction
    async def _add_participant(
        self,
        conn: AsyncConnection,
        access: TimebankAccess,
        data: ParticipantCreate,
        idempotency_key: str | None,
    ) -> ParticipantCreated:
        author = author_of(access.principal)
        request_hash = idempotency.fingerprint("create_participant", data.model_dump(mode="json"))
        roles = sorted(set(data.roles if data.roles is not None else ["member"]))
        invited_roles: list[Role] = roles if data.email is not None else []  # type: ignore[assignment]
        if idempotency_key is not None:
            earlier = await idempotency.claim_key(
                conn, access.timebank_id, author, idempotency_key, request_hash
            )
            if earlier is not None:
                participant_id = earlier["participant_id"]
                row = await repository.get_participant(conn, access.timebank_id, participant_id)
                return ParticipantCreated(**row, invited_roles=invited_roles)
        timebank = await repository.get_timebank_by_id(conn, access.timebank_id)
        if data.email is not None:
            await refuse_a_second_participant(conn, timebank.id, data.email)
        if data.external_id is not None:
            await refuse_taken_external_id(conn, timebank.id, data.external_id)
        record = await _enrol(
            conn, timebank, data.kind, data.display_name, data.joined_on, _contact_of(data)
        )
        invitation = None
        if data.email is not None:
            invitation = await self._invite(conn, access, record.id, data.email, roles)
        if idempotency_key is not None:
            await idempotency.answer_key(
                conn, timebank.id, author, idempotency_key, {"participant_id": record.id}
            )
        row = await repository.get_participant(conn, timebank.id, record.id)
        return ParticipantCreated(
            **row,
            invited_roles=invited_roles,
            invitation_token=invitation.invitation_token if invitation else None,
            invitation_expires_at=invitation.expires_at if invitation else None,
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

    async def reinvite(self, access: TimebankAccess, participant_id: int) -> InvitationPublic:
        """A fresh one-time invitation for a participant nobody has joined as yet, for the
        address and roles of their last one; earlier open invitations stop working."""
        require_manager(access, "invite people")
        return await self._reinvite(access, participant_id)

    @transaction
    async def _reinvite(
        self, conn: AsyncConnection, access: TimebankAccess, participant_id: int
    ) -> InvitationPublic:
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
        return await self._invite(conn, access, participant_id, last["email"], list(last["roles"]))

    async def list_participants(
        self,
        access: TimebankAccess,
        *,
        q: str | None = None,
        after_id: int | None = None,
        limit: int = 50,
        active_only: bool = False,
    ) -> ParticipantPage | ParticipantDirectoryPage:
        """Coordinators and admins: everyone, with balances, roles and contact details.
        Members: a directory (id, name, kind) to pick whom they exchanged with. Funders see
        aggregates only. ``active_only``: leave out those deactivated."""
        full = access.can_manage
        if not full and access.member_participant_id is None:
            raise Forbidden("funders see aggregate reports, not the list of participants")
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        rows = await in_transaction(
            self._engine,
            repository.list_participants,
            access.timebank_id,
            full=full,
            name_contains=q.strip() if q and q.strip() else None,
            after_id=after_id,
            limit=limit + 1,
            active_only=active_only,
        )
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
        row = await in_transaction(
            self._engine, repository.get_participant, access.timebank_id, participant_id
        )
        if not access.can_manage and access.member_participant_id != participant_id:
            raise Forbidden("members can see their own details only")
        shown = ParticipantPublic(**row)
        if not access.can_manage:
            timebank = await in_transaction(
                self._engine, repository.get_timebank_by_id, access.timebank_id
            )
            if timebank.policy.balance_display == "given_received":
                # The timebank shows its members no net figure (DESIGN.md §2).
                shown = shown.model_copy(update={"balance_minutes": None})
        return shown


async def _enrol(
    conn: AsyncConnection,
    timebank: TimebankRecord,
    kind: str,
    display_name: str,
    joined_on: date | None,
    contact: dict[str, Any] | None = None,
) -> ParticipantRecord:
    participant_id, joined, account_id = await repository.insert_participant(
        conn, timebank, kind, display_name, joined_on, contact=contact
    )
    await grant_welcome_hours(conn, timebank, account_id)
    return ParticipantRecord(
        id=participant_id,
        timebank_id=timebank.id,
        kind=kind,
        display_name=display_name,
        joined_on=joined,
        account_id=account_id,
    )


async def grant_welcome_hours(
    conn: AsyncConnection, timebank: TimebankRecord, account_id: int
) -> None:
    """The timebank's welcome hours (if any), from its community fund to a new account."""
    if timebank.policy.welcome_grant_minutes > 0:
        await ledger_repository.grant_welcome(
            conn,
            timebank.id,
            timebank.community_fund_account_id,
            account_id,
            timebank.policy.welcome_grant_minutes,
        )


def _contact_of(data: ParticipantCreate) -> dict[str, Any]:
    """The contact columns of a new participant; the preference, unless given, is the first
    way recorded."""
    preference = data.contact_preference or default_preference(
        data.email, data.phone, data.postal_address
    )
    return {
        "email": data.email,
        "phone": data.phone,
        "postal_address": data.postal_address,
        "contact_preference": preference,
        "external_id": data.external_id,
    }


def require_reachable(
    preference: str, email: str | None, phone: str | None, postal_address: str | None
) -> None:
    """Refuse (422, naming the field) a contact preference whose way is not recorded."""
    problem = contact_problem(preference, email, phone, postal_address)
    if problem is not None:
        field, message = problem
        raise ValidationFailed(message, field=field)


async def refuse_taken_external_id(
    conn: AsyncConnection, timebank_id: int, external_id: str, *, but: int | None = None
) -> None:
    """One external id is one participant per timebank (``but`` this one may hold it)."""
    existing = await details_repository.participant_with_external_id(
        conn, timebank_id, external_id, but=but
    )
    if existing is not None:
        raise Conflict(
            f"external id {external_id!r} is already participant {existing} of this timebank",
            field="external_id",
            participant_id=existing,
        )


async def refuse_a_second_participant(
    conn: AsyncConnection, timebank_id: int, email: str, *, but: int | None = None
) -> None:
    """One address is one participant per timebank (this timebank's own participants only:
    nothing is told about any other; ``but`` this one may hold it)."""
    existing = await repository.participant_with_email(conn, timebank_id, email, but=but)
    if existing is not None:
        raise Conflict(
            f"{email} is already participant {existing} of this timebank",
            field="email",
            participant_id=existing,
        )
