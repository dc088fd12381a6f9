"""Sign-in with growing delays, sessions and API tokens, and who a request is."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.auth import repository, sign_in_repository, throttle
from timebank.auth.schemas import (
    LoginResponse,
    MembershipPublic,
    MePublic,
    Principal,
    TimebankAccess,
    TokenCreated,
    TokenPublic,
    has_part,
)
from timebank.auth.secrets import PasswordWork, hash_token, needs_rehash, new_token
from timebank.db.statements import fetch_value
from timebank.db.transactions import in_transaction, raw_connection, transaction
from timebank.errors import NotFound, RateLimited, Unauthenticated, ValidationFailed
from timebank.settings import Settings

WRONG_CREDENTIALS = "that email and password do not match an account"

ThrottleKeys = tuple[bytes, bytes, bytes]


class Sessions:
    """Who may come in and with what: sign-in, sessions and API tokens, and what a principal
    is in a timebank."""

    def __init__(
        self, engine: AsyncEngine, settings: Settings, passwords: PasswordWork | None = None
    ) -> None:
        self._engine = engine
        self._settings = settings
        self.passwords = passwords or PasswordWork()
        self._sign_in_secret: bytes | None = None

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def settings(self) -> Settings:
        return self._settings

    # --- Sign-in -----------------------------------------------------------------------------

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
        return await self._signed_in(keys, user, new_hash)

    @transaction
    async def _signed_in(
        self,
        conn: AsyncConnection,
        keys: ThrottleKeys,
        user: Mapping[str, Any],
        new_hash: str | None,
    ) -> LoginResponse:
        await self._count_success(conn, keys)
        if new_hash is not None:
            await repository.set_password(conn, user["id"], new_hash)
        return await self._new_session(conn, user)

    async def _throttle_keys(self, email: str, client: str) -> ThrottleKeys:
        if self._sign_in_secret is None:
            async with self._engine.connect() as conn:
                self._sign_in_secret = await sign_in_repository.sign_in_secret(conn)
        return throttle.keys(self._sign_in_secret, email, client)

    async def _admit(
        self, keys: ThrottleKeys, email: str
    ) -> tuple[Mapping[str, Any] | None, str | None]:
        """Refuse a try while a delay runs; otherwise count it as a failure in advance (taken
        back if it succeeds), so that parallel tries each see the others, and return the user
        and password hash to check. One short transaction: the counters stay locked only
        while they are read and counted."""
        wait, user = await self._count_try(keys, email)
        if wait:
            raise RateLimited(
                f"too many failed sign-ins; try again in {wait} seconds", retry_after=wait
            )
        return user, user["password_hash"] if user else None

    @transaction
    async def _count_try(
        self, conn: AsyncConnection, keys: ThrottleKeys, email: str
    ) -> tuple[int, Mapping[str, Any] | None]:
        """The seconds to wait before trying (0: none), else the user of ``email`` (if any),
        the try counted as a failure in advance."""
        rules = throttle.gates(
            self._settings.login_max_failures_per_account,
            self._settings.login_max_failures_per_client,
        )
        await sign_in_repository.prune_counters(conn)
        now = await fetch_value(conn, "SELECT clock_timestamp()")
        # The client's own counter first: every try from one client takes its turn on it,
        # and a try it refuses leaves no row behind.
        client_row = (await sign_in_repository.lock_counters(conn, keys[:1]))[0]
        counters = (_counter(client_row), throttle.Counter(), throttle.Counter())
        wait = throttle.wait_seconds(counters, rules, now)
        if not wait:
            rows = await sign_in_repository.lock_counters(conn, keys[1:])
            counters = (counters[0], _counter(rows[0]), _counter(rows[1]))
            wait = throttle.wait_seconds(counters, rules, now)
        if wait:
            return wait, None
        await sign_in_repository.count_failure(conn, keys)
        return 0, await repository.user_by_email(conn, email)

    @staticmethod
    async def _count_success(conn: AsyncConnection, keys: ThrottleKeys) -> None:
        """A sign-in (or a password checked as one) succeeded: its tries start afresh."""
        await sign_in_repository.count_success(
            conn, known_address=keys[1], uncounted=(keys[0], keys[2])
        )

    async def _new_session(self, conn: AsyncConnection, user: Mapping[str, Any]) -> LoginResponse:
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
        await in_transaction(
            self._engine, repository.revoke_token, principal.user_id, principal.token_id
        )

    # --- Who a request is --------------------------------------------------------------------

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
            timebank_id = await repository.timebank_id(conn, slug)
            if timebank_id is None:
                raise NotFound(f"timebank {slug!r} not found")
            roles, participant_id, deactivated = await repository.roles_in(
                conn, principal.user_id, timebank_id
            )
        if not has_part(principal.is_admin, roles):
            raise NotFound(f"timebank {slug!r} not found")
        return TimebankAccess(
            principal=principal,
            timebank_id=timebank_id,
            timebank_slug=slug,
            roles=roles,
            participant_id=participant_id,
            participant_deactivated=deactivated,
        )

    # --- API tokens --------------------------------------------------------------------------

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
        row = await in_transaction(
            self._engine,
            repository.insert_token,
            user_id=principal.user_id,
            kind="api",
            name=name,
            token_hash=token_hash,
            expires_at=expires_at,
        )
        return TokenCreated(**row, token=secret)

    async def list_tokens(self, principal: Principal) -> list[TokenPublic]:
        async with self._engine.connect() as conn:
            return [
                TokenPublic(**row) for row in await repository.list_tokens(conn, principal.user_id)
            ]

    async def revoke_token(self, principal: Principal, token_id: int) -> None:
        if not await in_transaction(
            self._engine, repository.revoke_token, principal.user_id, token_id
        ):
            raise NotFound(f"token {token_id} not found")


def _counter(row: Mapping[str, Any] | None) -> throttle.Counter:
    if row is None:
        return throttle.Counter()
    return throttle.Counter(row["failures"], row["last_failed_at"], row["last_succeeded_at"])


def access_from_row(
    row: Mapping[str, Any] | None, slug: str, *, via_cookie: bool
) -> tuple[Principal, TimebankAccess | None] | None:
    """``Sessions.authenticate_in``'s answer from a row of ``principal_in_timebank`` (None for no
    row: no live token)."""
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
    if timebank_id is None or not has_part(principal.is_admin, roles):
        return principal, None
    return principal, TimebankAccess(
        principal=principal,
        timebank_id=timebank_id,
        timebank_slug=slug,
        roles=roles,
        participant_id=row["participant_id"],
        participant_deactivated=bool(row["participant_deactivated"]),
    )
