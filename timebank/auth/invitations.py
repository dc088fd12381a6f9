"""Accepting an invitation: signed out (a new account) or signed in (one's own), the user
takes part in the timebank as the invitation says, once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.auth import invitations_repository, repository
from timebank.auth.roles import roles_problem
from timebank.auth.schemas import InvitationAccepted, LoginResponse, Principal
from timebank.auth.secrets import check_password_rules, hash_token
from timebank.auth.sessions import Sessions
from timebank.db.transactions import transaction
from timebank.errors import Conflict, NotFound

INVITATION_GONE = "this invitation is unknown, already used or expired"
# The one thing a signed-out acceptance tells the token's holder: that the address has an
# account (somewhere; the same words wherever). Until invitations are emailed, see README.
SIGN_IN_TO_ACCEPT = (
    "an account already uses the address this invitation was sent to: sign in to accept it"
)
ALREADY_TAKES_PART = (
    "your account already takes part in this timebank as a participant; ask a coordinator "
    "to change your roles instead"
)
PARTICIPANT_TAKEN = "someone has already joined as this participant"
OWN_INVITATION = "nobody accepts an invitation they made: someone else runs your roles"


class Invitations(Sessions):
    """Invitations accepted, by a new account or an existing one."""

    async def accept_invitation(self, token: str, password: str) -> LoginResponse:
        """Accept an invitation signed out: a new account for the invitation's address, with
        this password, takes part as the invitation says, and is signed in. Refused (409)
        when an account already uses that address, wherever it takes part: its owner signs in
        and accepts (``accept_invitation_as``). The slow password hash is computed only for
        an invitation that is open (and off the event loop)."""
        check_password_rules(password)  # before any lookup; the address is checked once found
        token_hash = hash_token(token)
        invitation = await self._invitation_for_new_account(token_hash)
        check_password_rules(password, invitation["email"])
        password_hash = await self.passwords.hash(password)
        return await self._accept_as_new_account(token_hash, password_hash)

    @transaction
    async def _invitation_for_new_account(
        self, conn: AsyncConnection, token_hash: bytes
    ) -> Mapping[str, Any]:
        invitation = await invitations_repository.open_invitation(conn, token_hash)
        if invitation is None:
            raise NotFound(INVITATION_GONE)
        if await repository.user_by_email(conn, invitation["email"]) is not None:
            raise Conflict(SIGN_IN_TO_ACCEPT)
        return invitation

    @transaction
    async def _accept_as_new_account(
        self, conn: AsyncConnection, token_hash: bytes, password_hash: str
    ) -> LoginResponse:
        invitation = await _open_invitation(conn, token_hash)
        user_id = await repository.insert_user_if_new(
            conn,
            email=invitation["email"],
            display_name=invitation["display_name"] or "",
            password_hash=password_hash,
        )
        if user_id is None:
            raise Conflict(SIGN_IN_TO_ACCEPT)
        await _join(conn, invitation, user_id)
        user = await repository.user_summary(conn, user_id)
        assert user is not None, "the user was inserted in this transaction"
        return await self._new_session(conn, user)

    @transaction
    async def accept_invitation_as(
        self, conn: AsyncConnection, principal: Principal, token: str
    ) -> InvitationAccepted:
        """Accept an invitation signed in: the caller's own account takes part as the
        invitation says (its participant, its roles), in one transaction, once."""
        invitation = await _open_invitation(conn, hash_token(token))
        roles, participant_id = await _join(conn, invitation, principal.user_id)
        return InvitationAccepted.model_validate(
            {
                "user_id": principal.user_id,
                "timebank_slug": invitation["timebank_slug"],
                "participant_id": participant_id,
                "roles": roles,
            }
        )


async def _open_invitation(conn: AsyncConnection, token_hash: bytes) -> Mapping[str, Any]:
    """The open invitation of ``token_hash``, locked until the transaction ends, or NotFound."""
    invitation = await invitations_repository.open_invitation(conn, token_hash, for_update=True)
    if invitation is None:
        raise NotFound(INVITATION_GONE)
    return invitation


async def _join(
    conn: AsyncConnection, invitation: Mapping[str, Any], user_id: int
) -> tuple[list[str], int | None]:
    """The user takes part as ``invitation`` says: acts as its participant (if it names one),
    holds its roles besides those they had, the change recorded; the invitation is spent.
    Nobody accepts an invitation they made (that would change their own roles). Returns the
    user's roles in the timebank now, and their participant there."""
    if invitation["invited_by"] == user_id:
        raise Conflict(OWN_INVITATION)
    timebank_id, participant_id = invitation["timebank_id"], invitation["participant_id"]
    current = await repository.lock_roles(conn, timebank_id, user_id)
    existing = await invitations_repository.participant_in(conn, timebank_id, user_id)
    if participant_id is not None and existing is not None:
        raise Conflict(ALREADY_TAKES_PART)
    roles = sorted(set(current) | set(invitation["roles"]))
    problem = roles_problem(
        roles, has_participant=participant_id is not None or existing is not None
    )
    if problem:
        raise Conflict(problem)
    if participant_id is not None and not await invitations_repository.link_participant(
        conn, timebank_id, participant_id, user_id
    ):
        raise Conflict(PARTICIPANT_TAKEN)
    for role in roles:
        await repository.grant_role(conn, timebank_id, user_id, role)
    if roles != current:
        await repository.record_role_change(
            conn,
            timebank_id=timebank_id,
            user_id=user_id,
            participant_id=participant_id or existing,
            changed_by=invitation["invited_by"],
            invitation_id=invitation["id"],
            from_roles=current,
            to_roles=roles,
        )
    await invitations_repository.mark_accepted(conn, invitation["id"], user_id)
    return roles, participant_id or existing
