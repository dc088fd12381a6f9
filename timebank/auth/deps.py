"""Request dependencies: who is asking (``principal``) and what they are in the timebank of the
path (``access``). Every route that needs either declares it; nothing is checked by hiding."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie, State
from litestar.params import FromPath

from timebank.auth.schemas import LoginResponse, Principal, TimebankAccess
from timebank.auth.secrets import hash_token
from timebank.auth.service import AuthService
from timebank.auth.sessions import access_from_row
from timebank.errors import Forbidden, NotFound, Unauthenticated
from timebank.settings import Settings

SESSION_COOKIE = "timebank_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ENDED = "this session or token has ended; sign in again"


def cookie_name(name: str, secure: bool) -> str:
    """A Secure cookie is named ``__Host-…``: browsers then accept it only from this very host
    over HTTPS, with no Domain, so a neighbouring subdomain cannot plant one of its own."""
    return f"__Host-{name}" if secure else name


def site_cookie(name: str, value: str, settings: Settings, lifetime: int | None = None) -> Cookie:
    """A cookie of this site's own: named as ``cookie_name`` says, HttpOnly, Secure when the
    settings say so, SameSite=Lax, for every path; kept ``lifetime`` seconds from now, or for
    the browser's session when None."""
    # Litestar takes ``expires`` as well as ``max_age`` in seconds from now, not as a date.
    return Cookie(
        key=cookie_name(name, settings.cookie_secure),
        value=value,
        max_age=lifetime,
        expires=lifetime,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
        path="/",
    )


def session_cookie(session: LoginResponse, settings: Settings) -> Cookie:
    """The session cookie of a sign-in, for the API's sign-in and the pages' alike."""
    lifetime = max(0, int((session.expires_at - datetime.now(UTC)).total_seconds()))
    return site_cookie(SESSION_COOKIE, session.token, settings, lifetime)


def client_address(request: Request) -> str:
    """The client a request comes from, as sign-in throttling counts it: the peer, or what a
    proxy in TIMEBANK_TRUSTED_PROXIES says (the server resolves that; see ``timebank serve``)."""
    return request.client.host if request.client else "unknown"


def provide_auth(state: State) -> AuthService:
    return state.auth


def signed_out_cookie(secure: bool) -> Cookie:
    """Tells the browser to forget the session cookie."""
    return Cookie(
        key=cookie_name(SESSION_COOKIE, secure),
        value="",
        max_age=0,
        path="/",
        httponly=True,
        secure=secure,
    )


def bearer_or_cookie(request: Request, settings: Settings) -> tuple[str | None, bool]:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), False
    cookie = request.cookies.get(cookie_name(SESSION_COOKIE, settings.cookie_secure))
    return (cookie, True) if cookie else (None, False)


def _require_secret(secret: str | None) -> str:
    if not secret:
        raise Unauthenticated("sign in, or send an API token as 'Authorization: Bearer …'")
    return secret


def _cookie_without_json(request: Request, via_cookie: bool) -> bool:
    # A cookie travels with cross-site requests; a JSON body cannot be sent cross-site without
    # the browser asking first. (HTML forms carry their own CSRF token.)
    return (
        via_cookie
        and request.method not in SAFE_METHODS
        and not request.headers.get("content-type", "").startswith("application/json")
    )


_COOKIE_WITHOUT_JSON = "with the session cookie, send JSON (or use a bearer token)"


def _require_json_with_cookie(request: Request, via_cookie: bool) -> None:
    if _cookie_without_json(request, via_cookie):
        raise Forbidden(_COOKIE_WITHOUT_JSON)


async def provide_principal(request: Request, state: State) -> Principal:
    auth: AuthService = state.auth
    secret, via_cookie = bearer_or_cookie(request, auth.settings)
    principal = await auth.authenticate(_require_secret(secret), via_cookie=via_cookie)
    if principal is None:
        raise Unauthenticated(ENDED)
    _require_json_with_cookie(request, via_cookie)
    return principal


async def provide_access(slug: FromPath[str], request: Request, state: State) -> TimebankAccess:
    """Who is asking and what they are in the timebank of the path, in one query: the same
    answers, in the same order, as ``provide_principal`` then ``AuthService.access``. (The
    services come from the app's state, not as dependencies, so that nothing is resolved
    beside this in a task group of its own.)"""
    credentials = await provide_credentials(slug, request, state)
    auth: AuthService = state.auth
    return access_in(credentials, await auth.caller_in(credentials.token_hash, slug))


@dataclass(frozen=True)
class Credentials:
    """Who a request says it is, not yet looked up, and the timebank of its path: for a route
    that looks them up in the same statement as its own first read. ``access_in`` then gives
    the answer ``provide_access`` would have given, its refusals in the same order among
    themselves. A request with no secret at all is refused here, as by ``provide_access``;
    the rest come after the body has been validated, since the handler runs only then (a
    malformed body under an ended token is answered 422, not 401; nothing is written)."""

    token_hash: bytes
    slug: str
    via_cookie: bool
    cookie_without_json: bool

    def access(self, found: Mapping[str, Any] | None) -> TimebankAccess:
        """``access_in`` for these credentials."""
        return access_in(self, found)


async def provide_credentials(slug: FromPath[str], request: Request, state: State) -> Credentials:
    auth: AuthService = state.auth
    secret, via_cookie = bearer_or_cookie(request, auth.settings)
    return Credentials(
        token_hash=hash_token(_require_secret(secret)),
        slug=slug,
        via_cookie=via_cookie,
        cookie_without_json=_cookie_without_json(request, via_cookie),
    )


def access_in(credentials: Credentials, row: Mapping[str, Any] | None) -> TimebankAccess:
    """The caller's access from a row of ``principal_in_timebank`` read for ``credentials``."""
    found = access_from_row(row, credentials.slug, via_cookie=credentials.via_cookie)
    if found is None:
        raise Unauthenticated(ENDED)
    if credentials.cookie_without_json:
        raise Forbidden(_COOKIE_WITHOUT_JSON)
    return require_part_in(found[1], credentials.slug)


def require_part_in(access: TimebankAccess | None, slug: str) -> TimebankAccess:
    """Someone with no part in a timebank is told it does not exist, so nobody can probe for
    other timebanks."""
    if access is None:
        raise NotFound(f"timebank {slug!r} not found")
    return access
