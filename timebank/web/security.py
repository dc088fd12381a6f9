"""What every page answer carries (security headers), and the CSRF check every form passes.

CSRF: a random token in a cookie of its own (HttpOnly, SameSite=Lax, and named ``__Host-…``
when Secure, so no other host can set it) must come back in the form's ``csrf_token`` field;
a page from another site can neither read the cookie nor guess the token. A browser's own
``Sec-Fetch-Site: cross-site`` or ``same-site`` is refused outright as well."""

from __future__ import annotations

import re
import secrets
from hmac import compare_digest

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from timebank.auth.deps import cookie_name, site_cookie
from timebank.errors import Forbidden
from timebank.settings import Settings

CSRF_COOKIE = "timebank_csrf"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")

# No inline script or style anywhere, no framing, nothing from other origins.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeaders(ASGIMiddleware):
    """Adds the headers above to every answer of the pages and their static files (error
    pages included); pages, which show personal figures, are also never cached."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, *, no_store: bool) -> None:
        self.no_store = no_store

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if self.no_store:
                    headers["cache-control"] = "no-store"
            await send(message)

        await next_app(scope, receive, send_with_headers)


def csrf_hook(settings: Settings):
    """A ``before_request`` hook: give the request its CSRF token (a new one, and its cookie,
    if the browser has none yet) and refuse an unsafe request whose form lacks it."""

    async def check(request: Request) -> None:
        name = cookie_name(CSRF_COOKIE, settings.cookie_secure)
        cookie = request.cookies.get(name, "")
        if _TOKEN.fullmatch(cookie):
            request.state.csrf_token = cookie
            request.state.csrf_cookie = None
        else:
            token = secrets.token_urlsafe(32)
            request.state.csrf_token = token
            request.state.csrf_cookie = site_cookie(CSRF_COOKIE, token, settings)
        if request.method in SAFE_METHODS:
            return
        # Another site, or another subdomain of this one (which could plant cookies), never
        # posts our forms; browsers say where a request comes from.
        if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            raise Forbidden("forms are accepted from this site's own pages only")
        form = await request.form()
        sent = form.get(CSRF_FIELD)
        # Only a well-formed cookie counts (anything else was just replaced), and the two are
        # compared as bytes: compare_digest refuses str with non-ASCII characters.
        if (
            request.state.csrf_cookie is not None
            or not isinstance(sent, str)
            or not compare_digest(sent.encode(), cookie.encode())
        ):
            raise Forbidden(
                "this form has expired or did not come from this site; "
                "go back, reload the page and try again"
            )

    return check
