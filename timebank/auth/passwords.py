"""Passwords: changing one, resetting a forgotten one, making a site admin, and ending every
session of an account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.auth import repository
from timebank.auth.schemas import Principal
from timebank.auth.secrets import check_password_rules, hash_password, hash_token, new_token
from timebank.auth.sessions import Sessions, ThrottleKeys
from timebank.db.transactions import in_transaction, transaction
from timebank.errors import Conflict, NotFound, ValidationFailed

RESET_GONE = "this password reset is unknown, already used or expired; ask for a new one"


class Passwords(Sessions):
    """Setting passwords, and ending sessions when one changes."""

    async def change_password(
        self, principal: Principal, current: str, new: str, client: str
    ) -> None:
        """Set a new password, given the current one (checked, and throttled, as a sign-in
        is). Every other session and API token of the user ends (a password changed because it
        leaked must take what was made with it along); the one of this request stays."""
        async with self.passwords.admitted():
            check_password_rules(new, principal.email, field="new_password")
            keys = await self._throttle_keys(principal.email, client)
            _, password_hash = await self._admit(keys, principal.email)
            if not await self.passwords.verify(password_hash, current):
                raise ValidationFailed(
                    "the current password is not right", field="current_password"
                )
            new_hash = await self.passwords.hash(new)
            await self._set_password_as(principal, keys, new_hash)

    @transaction
    async def _set_password_as(
        self, conn: AsyncConnection, principal: Principal, keys: ThrottleKeys, new_hash: str
    ) -> None:
        await self._count_success(conn, keys)
        await repository.set_password(conn, principal.user_id, new_hash)
        await repository.revoke_tokens(conn, principal.user_id, keep=principal.token_id)

    async def sign_out_everywhere(self, principal: Principal) -> None:
        """End every session and API token of the user, the one of this request included."""
        await in_transaction(self._engine, repository.revoke_tokens, principal.user_id)

    async def issue_password_reset(self, email: str) -> str:
        """A one-time secret that sets a new password for the user with ``email``, valid for
        ``password_reset_hours``; any earlier one stops working. Whoever holds it can take
        over the account: it goes to the person only (by an admin today, by email later)."""
        secret, token_hash = new_token()
        expires_at = datetime.now(UTC) + timedelta(hours=self._settings.password_reset_hours)
        if not await self._insert_password_reset(email, token_hash, expires_at):
            raise NotFound("no user has that email")
        return secret

    @transaction
    async def _insert_password_reset(
        self, conn: AsyncConnection, email: str, token_hash: bytes, expires_at: datetime
    ) -> bool:
        user = await repository.user_by_email(conn, email)
        if user is None:
            return False
        await repository.insert_password_reset(
            conn, user_id=user["id"], token_hash=token_hash, expires_at=expires_at
        )
        return True

    async def reset_password(self, token: str, password: str) -> None:
        """Use a password reset: set the new password, end every session and token of the
        user. The reset works once."""
        token_hash = hash_token(token)
        async with self._engine.connect() as conn:
            user = await repository.open_password_reset(conn, token_hash)
        if user is None:
            raise NotFound(RESET_GONE)
        check_password_rules(password, user["email"])
        password_hash = await self.passwords.hash(password)
        if not await self._take_password_reset(token_hash, password_hash):
            raise NotFound(RESET_GONE)

    @transaction
    async def _take_password_reset(
        self, conn: AsyncConnection, token_hash: bytes, password_hash: str
    ) -> bool:
        user_id = await repository.take_password_reset(conn, token_hash)
        if user_id is None:
            return False
        await repository.set_password(conn, user_id, password_hash)
        await repository.revoke_tokens(conn, user_id)
        return True

    async def create_admin(self, email: str, password: str) -> int:
        """Create a site admin, or make an existing user one and set their password."""
        check_password_rules(password, email)
        password_hash = hash_password(password)
        try:
            return await self._make_admin(email, password_hash)
        except IntegrityError as error:  # raced with another create of the same email
            raise Conflict(f"a user with email {email} was created at the same time") from error

    @transaction
    async def _make_admin(self, conn: AsyncConnection, email: str, password_hash: str) -> int:
        user = await repository.user_by_email(conn, email)
        if user is None:
            return await repository.insert_user(
                conn, email=email, display_name="", password_hash=password_hash, is_admin=True
            )
        await repository.set_password(conn, user["id"], password_hash)
        await repository.make_admin(conn, user["id"])
        return int(user["id"])
