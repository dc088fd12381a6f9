"""Who is asking, for pages: the session cookie only (a page never takes a bearer token), and
the same ``TimebankAccess`` as the API, so the services decide exactly as they do there."""

from __future__ import annotations

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import FromPath

from timebank.auth.deps import SESSION_COOKIE, cookie_name, require_part_in
from timebank.auth.schemas import Principal, TimebankAccess
from timebank.auth.service import AuthService
from timebank.errors import Unauthenticated


def _session_secret(request: Request, auth: AuthService) -> str | None:
    return request.cookies.get(cookie_name(SESSION_COOKIE, auth.settings.cookie_secure))


async def provide_page_principal(request: Request, auth: NamedDependency[AuthService]) -> Principal:
    secret = _session_secret(request, auth)
    principal = await auth.authenticate(secret, via_cookie=True) if secret else None
    if principal is None:
        raise Unauthenticated("sign in to see this page")
    return principal


async def page_principal_or_none(request: Request, auth: AuthService) -> Principal | None:
    """Who is signed in on this browser, for a page that anyone may see: None if nobody."""
    secret = _session_secret(request, auth)
    return await auth.authenticate(secret, via_cookie=True) if secret else None


async def provide_page_access(
    slug: FromPath[str], request: Request, auth: NamedDependency[AuthService]
) -> TimebankAccess:
    """The page principal and what they are in the timebank of the path, in one query."""
    secret = _session_secret(request, auth)
    found = await auth.authenticate_in(secret, slug, via_cookie=True) if secret else None
    if found is None:
        raise Unauthenticated("sign in to see this page")
    return require_part_in(found[1], slug)
