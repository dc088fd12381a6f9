"""Timebanks, participants, invitations, roles and categories over JSON. Who may call what is
decided by the service (timebank/participants/service.py), never here."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar import Controller, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from timebank.deps import AccessDep, EngineDep, PrincipalDep, SettingsDep
from timebank.openapi import MAX_ID, ParticipantId, problems
from timebank.participants.schemas import (
    CategoryCreate,
    CategoryPublic,
    ParticipantCreate,
    ParticipantCreated,
    ParticipantDirectoryPage,
    ParticipantPage,
    ParticipantPublic,
    ParticipantUpdate,
    TimebankCreate,
    TimebankPublic,
    TimebankUpdate,
)
from timebank.participants.service import MAX_PAGE, Participants
from timebank.participants.staff_schemas import (
    InvitationPublic,
    RoleChangePublic,
    RolesUpdate,
    StaffInvite,
    StaffPublic,
    StaffRolesUpdate,
)

ParticipantsDep: TypeAlias = NamedDependency[Participants]
IdempotencyKeyHeader: TypeAlias = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="retrying with the same key and body returns the first answer; "
        "the same key with another body is refused (409)",
    ),
]


def provide_participants(engine: EngineDep, settings: SettingsDep) -> Participants:
    return Participants(engine, settings)


class TimebanksController(Controller):
    path = "/api/v1/timebanks"
    tags = ["timebanks"]
    dependencies = {"participants": Provide(provide_participants, sync_to_thread=False)}

    @post("/", status_code=HTTP_201_CREATED, responses=problems(401, 403, 409, 422))
    async def create_timebank(
        self,
        data: JSONBody[TimebankCreate],
        principal: PrincipalDep,
        participants: ParticipantsDep,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> TimebankPublic:
        """Create a timebank with its policy (site admins)."""
        return await participants.open_timebank(principal, data, idempotency_key)

    @get("/{slug:str}", responses=problems(401, 404))
    async def show_timebank(
        self, access: AccessDep, participants: ParticipantsDep
    ) -> TimebankPublic:
        """A timebank and its policy (anyone with a role in it, admins)."""
        return await participants.show_timebank(access)

    @patch("/{slug:str}", responses=problems(401, 403, 404, 422))
    async def update_timebank(
        self, data: JSONBody[TimebankUpdate], access: AccessDep, participants: ParticipantsDep
    ) -> TimebankPublic:
        """Rename a timebank or change its policy (its coordinators, admins)."""
        return await participants.update_timebank(access, data)

    @post(
        "/{slug:str}/participants",
        status_code=HTTP_201_CREATED,
        responses=problems(401, 403, 404, 409, 422),
    )
    async def add_participant(
        self,
        data: JSONBody[ParticipantCreate],
        access: AccessDep,
        participants: ParticipantsDep,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> ParticipantCreated:
        """Add a participant; with an email, also an invitation that grants the roles."""
        return await participants.add_participant(access, data, idempotency_key)

    @get("/{slug:str}/participants", responses=problems(401, 403, 404, 422))
    async def list_participants(
        self,
        access: AccessDep,
        participants: ParticipantsDep,
        q: Annotated[
            str | None, QueryParameter(max_length=200, description="part of the name")
        ] = None,
        after_id: Annotated[
            int | None,
            QueryParameter(ge=0, le=MAX_ID, description="next_after_id of the previous page"),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
        active: Annotated[
            bool, QueryParameter(description="true: only those not deactivated")
        ] = False,
    ) -> ParticipantPage | ParticipantDirectoryPage:
        """Participants: in full for coordinators and admins (with how to reach them), a
        directory for members."""
        return await participants.list_participants(
            access, q=q, after_id=after_id, limit=limit, active_only=active
        )

    @get("/{slug:str}/participants/{participant_id:int}", responses=problems(401, 403, 404, 422))
    async def show_participant(
        self, participant_id: ParticipantId, access: AccessDep, participants: ParticipantsDep
    ) -> ParticipantPublic:
        """One participant (coordinators and admins; a member: only themselves)."""
        return await participants.show_participant(access, participant_id)

    @patch(
        "/{slug:str}/participants/{participant_id:int}",
        responses=problems(401, 403, 404, 409, 422),
    )
    async def update_participant(
        self,
        participant_id: ParticipantId,
        data: JSONBody[ParticipantUpdate],
        access: AccessDep,
        participants: ParticipantsDep,
    ) -> ParticipantPublic:
        """Change a participant's name and contact details (coordinators, admins)."""
        return await participants.update_details(access, participant_id, data)

    @post(
        "/{slug:str}/participants/{participant_id:int}/deactivate",
        status_code=HTTP_200_OK,
        responses=problems(401, 403, 404),
    )
    async def deactivate_participant(
        self, participant_id: ParticipantId, access: AccessDep, participants: ParticipantsDep
    ) -> ParticipantPublic:
        """Deactivate a participant: nothing new is logged with them (coordinators, admins;
        not oneself)."""
        return await participants.deactivate(access, participant_id)

    @post(
        "/{slug:str}/participants/{participant_id:int}/reactivate",
        status_code=HTTP_200_OK,
        responses=problems(401, 403, 404),
    )
    async def reactivate_participant(
        self, participant_id: ParticipantId, access: AccessDep, participants: ParticipantsDep
    ) -> ParticipantPublic:
        """Reactivate a deactivated participant (coordinators, admins; not oneself)."""
        return await participants.reactivate(access, participant_id)

    @put(
        "/{slug:str}/participants/{participant_id:int}/roles",
        responses=problems(401, 403, 404, 409, 422),
    )
    async def set_roles(
        self,
        participant_id: ParticipantId,
        data: JSONBody[RolesUpdate],
        access: AccessDep,
        participants: ParticipantsDep,
    ) -> ParticipantPublic:
        """Set the roles of whoever joined as a participant (coordinators, admins; not oneself)."""
        return await participants.set_roles(access, participant_id, data)

    @post(
        "/{slug:str}/participants/{participant_id:int}/invitation",
        status_code=HTTP_201_CREATED,
        responses=problems(401, 403, 404, 409, 422),
    )
    async def reinvite(
        self, participant_id: ParticipantId, access: AccessDep, participants: ParticipantsDep
    ) -> InvitationPublic:
        """A fresh one-time invitation for a participant nobody has joined as yet."""
        return await participants.reinvite(access, participant_id)

    @get("/{slug:str}/role-changes", responses=problems(401, 403, 404, 422))
    async def role_changes(
        self,
        access: AccessDep,
        participants: ParticipantsDep,
        participant_id: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_ID, description="only this participant's")
        ] = None,
        user_id: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_ID, description="only this user's")
        ] = None,
    ) -> list[RoleChangePublic]:
        """Who changed whose roles, from what to what, when (coordinators, admins)."""
        return await participants.role_changes(
            access, participant_id=participant_id, user_id=user_id
        )

    @post("/{slug:str}/staff", status_code=HTTP_201_CREATED, responses=problems(401, 403, 404, 422))
    async def invite_staff(
        self, data: JSONBody[StaffInvite], access: AccessDep, participants: ParticipantsDep
    ) -> InvitationPublic:
        """Invite a coordinator or funder who takes no part in exchanges (no participant)."""
        return await participants.invite_staff(access, data)

    @get("/{slug:str}/staff", responses=problems(401, 403, 404))
    async def list_staff(
        self, access: AccessDep, participants: ParticipantsDep
    ) -> list[StaffPublic]:
        """Users with roles here and no participant (coordinators, admins)."""
        return await participants.list_staff(access)

    @put("/{slug:str}/staff/{user_id:int}/roles", responses=problems(401, 403, 404, 422))
    async def set_staff_roles(
        self,
        user_id: Annotated[int, PathParameter(ge=1, le=MAX_ID)],
        data: JSONBody[StaffRolesUpdate],
        access: AccessDep,
        participants: ParticipantsDep,
    ) -> StaffPublic | None:
        """Set a staff member's roles; [] removes them (coordinators, admins; not oneself)."""
        return await participants.set_staff_roles(access, user_id, data)

    @get("/{slug:str}/categories", responses=problems(401, 404))
    async def list_categories(
        self, access: AccessDep, participants: ParticipantsDep
    ) -> list[CategoryPublic]:
        """The service categories of a timebank (anyone with a role in it, admins)."""
        return await participants.list_categories(access)

    @post(
        "/{slug:str}/categories",
        status_code=HTTP_201_CREATED,
        responses=problems(401, 403, 404, 409, 422),
    )
    async def add_category(
        self, data: JSONBody[CategoryCreate], access: AccessDep, participants: ParticipantsDep
    ) -> CategoryPublic:
        """Add a service category (coordinators, admins)."""
        return await participants.add_category(access, data)


ROUTES: list = [TimebanksController]
