"""Passwords (argon2id, through argon2-cffi) and opaque tokens (only their SHA-256 is stored)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import os
import re
import secrets
import unicodedata
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from timebank.auth.common_passwords import COMMON_PASSWORDS
from timebank.errors import Overloaded, ValidationFailed

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200

_hasher = PasswordHasher()
# Verified when the email is unknown, so a wrong email costs the same time as a wrong password.
_UNKNOWN_USER_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password_rules(
    password: str, email: str | None = None, *, field: str = "password"
) -> None:
    """A password is refused when it is shorter than ten characters (or longer than 200), one
    of the most common passwords, a single character repeated, or the account's email or the
    part before its ``@`` (with or without trailing digits)."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
            field=field,
        )
    if "\x00" in password:
        raise ValidationFailed("a password cannot contain a NUL character", field=field)
    plain = _plain(password)
    if plain in COMMON_PASSWORDS or len(set(plain)) <= 2:
        raise ValidationFailed(
            "this password is among the first that anyone guesses; choose another", field=field
        )
    names = {_plain(email), _plain(email.partition("@")[0])} if email else set()
    if names and (plain in names or plain.rstrip(_DIGITS) in {n.rstrip(_DIGITS) for n in names}):
        raise ValidationFailed("a password cannot be your email address", field=field)


_DIGITS = "0123456789"


def _plain(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).casefold())


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _UNKNOWN_USER_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


T = TypeVar("T")


class PasswordWork:
    """Runs password hashing off the event loop, on ``threads`` threads (argon2 releases the
    interpreter while it works), for at most ``capacity`` requests at once (``threads`` plus
    ``waiting``). A request that needs a password checked takes its place first, with
    ``admitted()``, before it touches the database; beyond the capacity it is refused at once
    (503 ``Overloaded``), so a flood of sign-ins neither queues without bound nor holds the
    database connections other requests need. Each hash is slow and takes 64 MiB by design."""

    def __init__(self, threads: int | None = None, waiting: int | None = None) -> None:
        self.threads = threads or os.cpu_count() or 1
        self.capacity = self.threads + (self.threads * 4 if waiting is None else waiting)
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="password")
        self.in_flight = 0
        self._admitted: contextvars.ContextVar[bool] = contextvars.ContextVar(
            "password_work_admitted", default=False
        )

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """A place among the requests whose passwords are being checked, for the whole
        request (nested uses take no second place)."""
        if self._admitted.get():
            yield
            return
        if self.in_flight >= self.capacity:
            raise Overloaded(
                "the service is busy checking other passwords; try again in a moment",
                retry_after=1,
            )
        self.in_flight += 1
        token = self._admitted.set(True)
        try:
            yield
        finally:
            self._admitted.reset(token)
            self.in_flight -= 1

    async def run(self, work: Callable[..., T], *args: object) -> T:
        async with self.admitted():
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await self.run(verify_password, password_hash, password)

    async def hash(self, password: str) -> str:
        return await self.run(hash_password, password)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def new_token() -> tuple[str, bytes]:
    """A fresh secret to hand out, and the hash to store."""
    secret = secrets.token_urlsafe(32)
    return secret, hash_token(secret)


def hash_token(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()
