"""Roles in a timebank: those of whoever joined as a participant, and staff (coordinators and
funders without a participant); every change recorded."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.auth import repository as auth_repository
from timebank.auth.roles import participant_roles_problem
from timebank.auth.schemas import TimebankAccess, has_part
from timebank.db.transactions import in_transaction, transaction
from timebank.errors import Conflict, Forbidden, NotFound, ValidationFailed
from timebank.participants import repository
from timebank.participants.enrolment import Enrolment
from timebank.participants.schemas import ParticipantPublic
from timebank.participants.staff_schemas import (
    InvitationPublic,
    RoleChangePublic,
    RolesUpdate,
    StaffInvite,
    StaffPublic,
    StaffRolesUpdate,
)
from timebank.participants.timebanks import require_manager


class Staff(Enrolment):
    """Who holds which roles: participants' users and staff, invited, changed and recorded."""

    async def set_roles(
        self, access: TimebankAccess, participant_id: int, data: RolesUpdate
    ) -> ParticipantPublic:
        """Set the roles of whoever joined as a participant (coordinators, admins): never
        one's own, never 'funder' (funders are staff). The change is recorded; someone left
        with no role anywhere is signed out everywhere."""
        require_manager(access, "change roles")
        roles: list[str] = sorted(set(data.roles))
        problem = participant_roles_problem(roles)
        if problem:
            raise ValidationFailed(problem, field="roles")
        return await self._set_roles(access, participant_id, roles)

    @transaction
    async def _set_roles(
        self, conn: AsyncConnection, access: TimebankAccess, participant_id: int, roles: list[str]
    ) -> ParticipantPublic:
        row = await repository.get_participant(conn, access.timebank_id, participant_id)
        user_id = row["user_id"]
        if user_id is None:
            raise Conflict(
                "nobody has joined as this participant yet: the roles of their invitation "
                "are granted when it is accepted",
                participant_id=participant_id,
            )
        await _change_roles(conn, access, user_id, participant_id, roles)
        return ParticipantPublic(
            **await repository.get_participant(conn, access.timebank_id, participant_id)
        )

    async def invite_staff(self, access: TimebankAccess, data: StaffInvite) -> InvitationPublic:
        """Invite a coordinator or funder who takes no part in exchanges (no participant):
        the same one-time invitation, the same answer whatever the address."""
        require_manager(access, "invite staff")
        roles: list[str] = sorted(set(data.roles))
        return await self._invite_staff(access, data.email, roles)

    @transaction
    async def _invite_staff(
        self, conn: AsyncConnection, access: TimebankAccess, email: str, roles: list[str]
    ) -> InvitationPublic:
        return await self._invite(conn, access, None, email, roles)

    async def list_staff(self, access: TimebankAccess) -> list[StaffPublic]:
        """Users with roles in this timebank and no participant in it (coordinators, admins)."""
        require_manager(access, "see the staff")
        rows = await in_transaction(self._engine, repository.list_staff, access.timebank_id)
        return [StaffPublic(**row) for row in rows]

    async def set_staff_roles(
        self, access: TimebankAccess, user_id: int, data: StaffRolesUpdate
    ) -> StaffPublic | None:
        """Set the roles of a staff member (coordinators, admins; never one's own): None when
        [] leaves them no role here (they are no longer staff)."""
        require_manager(access, "change roles")
        return await self._set_staff_roles(access, user_id, sorted(set(data.roles)))

    @transaction
    async def _set_staff_roles(
        self, conn: AsyncConnection, access: TimebankAccess, user_id: int, roles: list[str]
    ) -> StaffPublic | None:
        staff = await repository.staff_member(conn, access.timebank_id, user_id)
        if staff is None:
            raise NotFound(f"no staff member {user_id} in this timebank")
        await _change_roles(conn, access, user_id, None, roles)
        found = await repository.staff_member(conn, access.timebank_id, user_id)
        return StaffPublic(**found) if found is not None else None

    async def role_changes(
        self,
        access: TimebankAccess,
        *,
        participant_id: int | None = None,
        user_id: int | None = None,
    ) -> list[RoleChangePublic]:
        """The recorded role changes of this timebank, oldest first (coordinators, admins)."""
        require_manager(access, "see role changes")
        rows = await in_transaction(
            self._engine,
            auth_repository.role_changes,
            access.timebank_id,
            participant_id=participant_id,
            user_id=user_id,
        )
        return [RoleChangePublic(**row) for row in rows]


async def _change_roles(
    conn: AsyncConnection,
    access: TimebankAccess,
    user_id: int,
    participant_id: int | None,
    roles: list[str],
) -> None:
    """``user_id`` holds exactly ``roles`` in the timebank, the change recorded. Nobody
    changes their own roles; someone left with no part anywhere is signed out everywhere."""
    if user_id == access.principal.user_id:
        raise Forbidden("nobody changes their own roles: ask another coordinator or an admin")
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
