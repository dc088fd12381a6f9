"""Sign-in with growing delays, sessions and API tokens, passwords and their resets,
invitations, and who a request is."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.auth import repository, throttle
from timebank.auth.roles import roles_problem
from timebank.auth.schemas import (
    InvitationAccepted,
    LoginResponse,
    MembershipPublic,
    MePublic,
    Principal,
    TimebankAccess,
    TokenCreated,
    TokenPublic,
)
from timebank.auth.secrets import (
    PasswordWork,
    check_password_rules,
    hash_password,
    hash_token,
    needs_rehash,
    new_token,
)
from timebank.db.transactions import raw_connection, run_in_transaction
from timebank.errors import (
    Conflict,
    NotFound,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from timebank.settings import Settings

WRONG_CREDENTIALS = "that email and password do not match an account"
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
RESET_GONE = "this password reset is unknown, already used or expired; ask for a new one"


class AuthService:
    def __init__(
        self, engine: AsyncEngine, settings: Settings, passwords: PasswordWork | None = None
    ) -> None:
        self._engine = engine
        self._settings = settings
        self.passwords = passwords or PasswordWork()
        self._sign_in_secret: bytes | None = None

    @property
    def settings(self) -> Settings:
        return self._settings

    async def login(self, email: str, password: str, client: str) -> LoginResponse:
        """Sign in; a wrong email and a wrong password answer the same way. Failures slow
        further tries by delays (``timebank.auth.throttle``): 429 with ``Retry-After`` while one
        runs. The password is checked off the event loop, with no database connection held;
        a sign-in beyond what the service checks at once is refused (503) before it reads
        anything."""
        async with self.passwords.admitted():
            return await self._login(email, password, client)

    async def _login(self, email: str, password: str, client: str) -> LoginResponse:
        keys = await self._throttle_keys(email, client)
        user, password_hash = await self._admit(keys, email)
        if not await self.passwords.verify(password_hash, password) or user is None:
            raise Unauthenticated(WRONG_CREDENTIALS)
        new_hash = None
        if password_hash and needs_rehash(password_hash):
            new_hash = await self.passwords.hash(password)

        async def work(conn):
            await repository.count_success(
                conn, known_address=keys[1], uncounted=(keys[0], keys[2])
            )
            if new_hash is not None:
                await repository.set_password(conn, user["id"], new_hash)
            return await self._new_session(conn, user)

        return await run_in_transaction(self._engine, work)

    async def _throttle_keys(self, email: str, client: str) -> tuple[bytes, bytes, bytes]:
        if self._sign_in_secret is None:
            async with self._engine.connect() as conn:
                self._sign_in_secret = await repository.sign_in_secret(conn)
        return throttle.keys(self._sign_in_secret, email, client)

    async def _admit(
        self, keys: tuple[bytes, bytes, bytes], email: str
    ) -> tuple[Mapping[str, Any] | None, str | None]:
        """Refuse a try while a delay runs; otherwise count it as a failure in advance (taken
        back if it succeeds), so that parallel tries each see the others, and return the user
        and password hash to check. One short transaction: the counters stay locked only
        while they are read and counted."""
        rules = throttle.gates(
            self._settings.login_max_failures_per_account,
            self._settings.login_max_failures_per_client,
        )

        async def work(conn):
            await repository.prune_counters(conn)
            now = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
            # The client's own counter first: every try from one client takes its turn on it,
            # and a try it refuses leaves no row behind.
            client_row = (await repository.lock_counters(conn, keys[:1]))[0]
            counters = [_counter(client_row), throttle.Counter(), throttle.Counter()]
            wait = throttle.wait_seconds(tuple(counters), rules, now)  # type: ignore[arg-type]
            if not wait:
                rows = await repository.lock_counters(conn, keys[1:])
                counters[1:] = [_counter(row) for row in rows]
                wait = throttle.wait_seconds(tuple(counters), rules, now)  # type: ignore[arg-type]
            if wait:
                return wait, None
            await repository.count_failure(conn, keys)
            return 0, await repository.user_by_email(conn, email)

        wait, user = await run_in_transaction(self._engine, work)
        if wait:
            raise RateLimited(
                f"too many failed sign-ins; try again in {wait} seconds", retry_after=wait
            )
        return user, user["password_hash"] if user else None

    async def _new_session(self, conn, user) -> LoginResponse:
        secret, token_hash = new_token()
        expires_at = datetime.now(UTC) + timedelta(days=self._settings.session_days)
        await repository.insert_token(
            conn,
            user_id=user["id"],
            kind="session",
            name="sign-in",
            token_hash=token_hash,
            expires_at=expires_at,
        )
        return LoginResponse(
            token=secret,
            expires_at=expires_at,
            user_id=user["id"],
            email=user["email"],
            is_admin=user["is_admin"],
        )

    async def logout(self, principal: Principal) -> None:
        """End the session (or revoke the token) the request was made with."""

        async def work(conn):
            await repository.revoke_token(conn, principal.user_id, principal.token_id)

        await run_in_transaction(self._engine, work)

    async def authenticate(self, secret: str, *, via_cookie: bool = False) -> Principal | None:
        async with self._engine.connect() as conn:
            row = await repository.principal_by_token(conn, hash_token(secret))
        if row is None:
            return None
        return Principal(
            user_id=row["user_id"],
            email=row["email"],
            is_admin=row["is_admin"],
            token_id=row["token_id"],
            via_cookie=via_cookie,
            token_kind=row["token_kind"],
            token_expires_at=row["token_expires_at"],
        )

    async def authenticate_in(
        self, secret: str, slug: str, *, via_cookie: bool = False
    ) -> tuple[Principal, TimebankAccess | None] | None:
        """``authenticate`` and ``access`` in one statement: None for a secret that signs nobody
        in; else the principal, with what they are in timebank ``slug`` (None when they have
        no part in it, or it does not exist: see ``access``)."""
        row = await self.caller_in(hash_token(secret), slug)
        return access_from_row(row, slug, via_cookie=via_cookie)

    async def caller_in(self, token_hash: bytes, slug: str) -> Mapping[str, Any] | None:
        """``principal_in_timebank`` on a pooled connection: the row ``access_from_row``
        reads."""
        async with raw_connection(self._engine) as conn:
            return await repository.principal_in_timebank(conn, token_hash, slug)

    async def create_token(
        self, principal: Principal, name: str, days: int | None = None
    ) -> TokenCreated:
        """A new API token lasting ``days`` (the setting's default when None; never more than
        ``api_token_max_days``); its secret is shown once, here, and never again. A token made
        with another API token never outlives it, so a stolen token cannot renew itself."""
        longest = self._settings.api_token_max_days
        if days is not None and days > longest:
            raise ValidationFailed(
                f"an API token lasts at most {longest} days", field="expires_in_days"
            )
        lifetime = timedelta(days=days or min(self._settings.api_token_days, longest))
        expires_at = datetime.now(UTC) + lifetime
        if principal.token_kind == "api" and principal.token_expires_at is not None:  # noqa: S105
            expires_at = min(expires_at, principal.token_expires_at)
        secret, token_hash = new_token()

        async def work(conn):
            return await repository.insert_token(
                conn,
                user_id=principal.user_id,
                kind="api",
                name=name,
                token_hash=token_hash,
                expires_at=expires_at,
            )

        row = await run_in_transaction(self._engine, work)
        return TokenCreated(**row, token=secret)

    async def list_tokens(self, principal: Principal) -> list[TokenPublic]:
        async with self._engine.connect() as conn:
            return [
                TokenPublic(**row) for row in await repository.list_tokens(conn, principal.user_id)
            ]

    async def revoke_token(self, principal: Principal, token_id: int) -> None:
        async def work(conn):
            return await repository.revoke_token(conn, principal.user_id, token_id)

        if not await run_in_transaction(self._engine, work):
            raise NotFound(f"token {token_id} not found")

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

            async def work(conn):
                await repository.count_success(
                    conn, known_address=keys[1], uncounted=(keys[0], keys[2])
                )
                await repository.set_password(conn, principal.user_id, new_hash)
                await repository.revoke_tokens(conn, principal.user_id, keep=principal.token_id)

            await run_in_transaction(self._engine, work)

    async def sign_out_everywhere(self, principal: Principal) -> None:
        """End every session and API token of the user, the one of this request included."""

        async def work(conn):
            await repository.revoke_tokens(conn, principal.user_id)

        await run_in_transaction(self._engine, work)

    async def issue_password_reset(self, email: str) -> str:
        """A one-time secret that sets a new password for the user with ``email``, valid for
        ``password_reset_hours``; any earlier one stops working. Whoever holds it can take
        over the account: it goes to the person only (by an admin today, by email later)."""
        secret, token_hash = new_token()
        expires_at = datetime.now(UTC) + timedelta(hours=self._settings.password_reset_hours)

        async def work(conn):
            user = await repository.user_by_email(conn, email)
            if user is None:
                return False
            await repository.insert_password_reset(
                conn, user_id=user["id"], token_hash=token_hash, expires_at=expires_at
            )
            return True

        if not await run_in_transaction(self._engine, work):
            raise NotFound("no user has that email")
        return secret

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

        async def work(conn):
            user_id = await repository.take_password_reset(conn, token_hash)
            if user_id is None:
                return False
            await repository.set_password(conn, user_id, password_hash)
            await repository.revoke_tokens(conn, user_id)
            return True

        if not await run_in_transaction(self._engine, work):
            raise NotFound(RESET_GONE)

    async def accept_invitation(self, token: str, password: str) -> LoginResponse:
        """Accept an invitation signed out: a new account for the invitation's address, with
        this password, takes part as the invitation says, and is signed in. Refused (409)
        when an account already uses that address, wherever it takes part: its owner signs in
        and accepts (``accept_invitation_as``). The slow password hash is computed only for
        an invitation that is open (and off the event loop)."""
        check_password_rules(password)  # before any lookup; the address is checked once found
        token_hash = hash_token(token)

        async def find(conn: AsyncConnection) -> Mapping[str, Any]:
            invitation = await repository.open_invitation(conn, token_hash)
            if invitation is None:
                raise NotFound(INVITATION_GONE)
            if await repository.user_by_email(conn, invitation["email"]) is not None:
                raise Conflict(SIGN_IN_TO_ACCEPT)
            return invitation

        invitation = await run_in_transaction(self._engine, find)
        check_password_rules(password, invitation["email"])
        password_hash = await self.passwords.hash(password)

        async def work(conn: AsyncConnection) -> LoginResponse:
            invitation = await repository.open_invitation(conn, token_hash, for_update=True)
            if invitation is None:
                raise NotFound(INVITATION_GONE)
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
            return await self._new_session(conn, user)

        return await run_in_transaction(self._engine, work)

    async def accept_invitation_as(self, principal: Principal, token: str) -> InvitationAccepted:
        """Accept an invitation signed in: the caller's own account takes part as the
        invitation says (its participant, its roles), in one transaction, once."""
        token_hash = hash_token(token)

        async def work(conn: AsyncConnection) -> InvitationAccepted:
            invitation = await repository.open_invitation(conn, token_hash, for_update=True)
            if invitation is None:
                raise NotFound(INVITATION_GONE)
            roles, participant_id = await _join(conn, invitation, principal.user_id)
            return InvitationAccepted.model_validate(
                {
                    "user_id": principal.user_id,
                    "timebank_slug": invitation["timebank_slug"],
                    "participant_id": participant_id,
                    "roles": roles,
                }
            )

        return await run_in_transaction(self._engine, work)

    async def create_admin(self, email: str, password: str) -> int:
        """Create a site admin, or make an existing user one and set their password."""
        check_password_rules(password, email)
        password_hash = hash_password(password)

        async def work(conn):
            user = await repository.user_by_email(conn, email)
            if user is None:
                return await repository.insert_user(
                    conn, email=email, display_name="", password_hash=password_hash, is_admin=True
                )
            await repository.set_password(conn, user["id"], password_hash)
            await repository.make_admin(conn, user["id"])
            return user["id"]

        try:
            return await run_in_transaction(self._engine, work)
        except IntegrityError as error:  # raced with another create of the same email
            raise Conflict(f"a user with email {email} was created at the same time") from error

    async def me(self, principal: Principal) -> MePublic:
        async with self._engine.connect() as conn:
            user = await repository.user_summary(conn, principal.user_id)
            if user is None:
                raise Unauthenticated("this account no longer exists")
            rows = await repository.memberships(conn, principal.user_id)
        return MePublic(
            user_id=user["id"],
            email=user["email"],
            display_name=user["display_name"],
            is_admin=user["is_admin"],
            timebanks=[MembershipPublic(**row) for row in rows],
        )

    async def access(self, principal: Principal, slug: str) -> TimebankAccess:
        """What the principal is in timebank ``slug``. Someone with no part in it is told it
        does not exist, so nobody can probe for other timebanks."""
        async with self._engine.connect() as conn:
            timebank_id = (
                await conn.execute(
                    text("SELECT id FROM timebanks WHERE slug = :slug"), {"slug": slug}
                )
            ).scalar_one_or_none()
            if timebank_id is None:
                raise NotFound(f"timebank {slug!r} not found")
            roles, participant_id = await repository.roles_in(conn, principal.user_id, timebank_id)
        if not principal.is_admin and not roles:
            raise NotFound(f"timebank {slug!r} not found")
        return TimebankAccess(
            principal=principal,
            timebank_id=timebank_id,
            timebank_slug=slug,
            roles=roles,
            participant_id=participant_id,
        )


def _counter(row: Mapping[str, Any] | None) -> throttle.Counter:
    if row is None:
        return throttle.Counter()
    return throttle.Counter(row["failures"], row["last_failed_at"], row["last_succeeded_at"])


def access_from_row(
    row: Mapping[str, Any] | None, slug: str, *, via_cookie: bool
) -> tuple[Principal, TimebankAccess | None] | None:
    """``AuthService.authenticate_in``'s answer from a row of ``principal_in_timebank`` (None for
    no row: no live token)."""
    if row is None:
        return None
    principal = Principal(
        user_id=row["user_id"],
        email=row["email"],
        is_admin=row["is_admin"],
        token_id=row["token_id"],
        via_cookie=via_cookie,
    )
    timebank_id, roles = row["timebank_id"], frozenset(row["roles"] or ())
    if timebank_id is None or not (principal.is_admin or roles):
        return principal, None
    return principal, TimebankAccess(
        principal=principal,
        timebank_id=timebank_id,
        timebank_slug=slug,
        roles=roles,
        participant_id=row["participant_id"],
    )


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
    existing = await repository.participant_in(conn, timebank_id, user_id)
    if participant_id is not None and existing is not None:
        raise Conflict(ALREADY_TAKES_PART)
    roles = sorted(set(current) | set(invitation["roles"]))
    problem = roles_problem(
        roles, has_participant=participant_id is not None or existing is not None
    )
    if problem:
        raise Conflict(problem)
    if participant_id is not None and not await repository.link_participant(
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
    await repository.mark_accepted(conn, invitation["id"], user_id)
    return roles, participant_id or existing
