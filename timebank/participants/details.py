"""A participant's details as coordinators keep them: their name and how to reach them
(edited), and whether they are active (deactivated and reactivated). DESIGN.md §5 says what
deactivation means beside leaving."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.auth.schemas import TimebankAccess
from timebank.db.transactions import transaction
from timebank.errors import Forbidden
from timebank.participants import details_repository, repository
from timebank.participants.contact import NEEDS
from timebank.participants.enrolment import (
    refuse_a_second_participant,
    refuse_taken_external_id,
    require_reachable,
)
from timebank.participants.schemas import ParticipantPublic, ParticipantUpdate
from timebank.participants.staff import Staff
from timebank.participants.timebanks import require_manager


class Details(Staff):
    """Editing a participant's details, and deactivating or reactivating them."""

    async def update_details(
        self, access: TimebankAccess, participant_id: int, data: ParticipantUpdate
    ) -> ParticipantPublic:
        """Change a participant's name and contact details (coordinators and admins): only the
        fields sent; an email or external id another participant of the timebank holds is
        refused (409 naming the field), and so is a contact preference left without its way
        (422). No invitation is sent for a new email."""
        require_manager(access, "edit participants' details")
        return await self._update_details(access, participant_id, data)

    @transaction
    async def _update_details(
        self,
        conn: AsyncConnection,
        access: TimebankAccess,
        participant_id: int,
        data: ParticipantUpdate,
    ) -> ParticipantPublic:
        timebank_id = access.timebank_id
        stored = await details_repository.stored_details(conn, timebank_id, participant_id)
        changes = data.model_dump(include=data.model_fields_set)
        merged: dict[str, Any] = {**stored, **changes}
        preference = merged["contact_preference"]
        if "contact_preference" in changes or NEEDS[preference] in changes:
            email = merged["email"]
            if email is None and stored["email"] is None:
                # Reached, as the answers show, at their user's or invitation's address.
                shown = await repository.get_participant(conn, timebank_id, participant_id)
                email = shown["email"]
            require_reachable(preference, email, merged["phone"], merged["postal_address"])
        if changes.get("email") is not None:
            await refuse_a_second_participant(
                conn, timebank_id, changes["email"], but=participant_id
            )
        if changes.get("external_id") is not None:
            await refuse_taken_external_id(
                conn, timebank_id, changes["external_id"], but=participant_id
            )
        await details_repository.update_details(conn, timebank_id, participant_id, merged)
        row = await repository.get_participant(conn, timebank_id, participant_id)
        return ParticipantPublic(**row)

    async def deactivate(self, access: TimebankAccess, participant_id: int) -> ParticipantPublic:
        """Deactivate a participant (coordinators and admins, never their own): nothing new
        is logged with them or by their user here until they are reactivated; their account,
        balance and history stay. Deactivating someone deactivated changes nothing."""
        return await self._set_active(access, participant_id, active=False)

    async def reactivate(self, access: TimebankAccess, participant_id: int) -> ParticipantPublic:
        """Reactivate a deactivated participant (coordinators and admins, never their own);
        reactivating someone active changes nothing."""
        return await self._set_active(access, participant_id, active=True)

    async def _set_active(
        self, access: TimebankAccess, participant_id: int, *, active: bool
    ) -> ParticipantPublic:
        what = "reactivate" if active else "deactivate"
        require_manager(access, f"{what} participants")
        if access.participant_id == participant_id:
            raise Forbidden(f"another coordinator must {what} your own participant")
        return await self._store_active(access, participant_id, active)

    @transaction
    async def _store_active(
        self, conn: AsyncConnection, access: TimebankAccess, participant_id: int, active: bool
    ) -> ParticipantPublic:
        await details_repository.set_deactivated(
            conn, access.timebank_id, participant_id, not active
        )
        row = await repository.get_participant(conn, access.timebank_id, participant_id)
        return ParticipantPublic(**row)
