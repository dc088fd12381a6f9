"""Answering with a page, a redirect or an error page: every page goes through ``page`` (a
timebank's pages through ``TimebankPage.render``) so that it carries the CSRF token (and its
cookie the first time) and the same shared context."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.auth.schemas import TimebankAccess
from timebank.errors import UNDECODABLE, TimebankError, Unauthenticated
from timebank.hours import describe_minutes, format_minutes
from timebank.participants.contact import how_to_reach
from timebank.participants.names import names_of, reach_of
from timebank.participants.service import Participants

SIGN_IN = "/sign-in"

# What each state of an exchange is called on the pages.
STATE_LABELS = {
    "logged": "waiting for the other person to confirm",
    "awaiting_approval": "waiting for a coordinator",
    "disputed": "disputed: a coordinator will decide",
    "approved": "approved",
    "rejected": "rejected",
    "cancelled": "cancelled",
    "reversed": "reversed",
}
PENDING_STATES = frozenset({"logged", "awaiting_approval", "disputed"})


def page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> Template:
    """An HTML page from ``template``, with the CSRF token every form needs."""
    csrf_cookie = getattr(request.state, "csrf_cookie", None)
    context.setdefault("csrf_token", getattr(request.state, "csrf_token", ""))
    context.setdefault("path", request.url.path)
    return Template(
        template_name=template,
        context=context,
        status_code=status_code,
        cookies=[csrf_cookie] if csrf_cookie is not None else [],
    )


@dataclass(frozen=True)
class TimebankPage:
    """A request for a page of one timebank: who asks there, and what every such page reads
    through (the participants service, and the database for the names of the people shown)."""

    request: Request
    access: TimebankAccess
    participants: Participants
    engine: AsyncEngine

    async def render(self, template: str, *, status_code: int = 200, **context: Any) -> Template:
        """``page`` with the caller's access and the timebank they are in (whose name every
        such page shows)."""
        timebank = await self.participants.show_timebank(self.access)
        return page(
            self.request,
            template,
            status_code=status_code,
            access=self.access,
            timebank=timebank,
            **context,
        )

    async def names_of(self, ids: Iterable[int | None]) -> dict[int, str]:
        """Participant id → display name, for the people this page names."""
        return await names_of(self.engine, self.access, ids)

    async def reach_of(self, ids: Iterable[int | None]) -> dict[int, str]:
        """Participant id → how to reach them, for the people this page names: for
        coordinators and admins; empty for anyone else, whose pages never show it."""
        if not self.access.can_manage:
            return {}
        return await reach_of(self.engine, self.access, ids)


def redirect(path: str, **query: Any) -> Redirect:
    """See other (303): after a form, the browser asks for the next page with GET, so that
    reloading it never sends the form again."""
    target = f"{path}?{urlencode(query)}" if query else path
    return Redirect(path=target, status_code=303)


def local_path(candidate: str | None, default: str) -> str:
    """A path on this site to go to next, never another site's address."""
    if candidate and candidate.startswith("/") and not candidate.startswith(("//", "/\\")):
        return candidate
    return default


def error_page(request: Request, exc: Exception) -> Response:
    """Errors on a page: signing in where that is what is missing, a plain page otherwise."""
    if isinstance(exc, Unauthenticated):
        query = {"next": request.url.path} if request.method == "GET" else {}
        return redirect(SIGN_IN, **query)
    if isinstance(exc, TimebankError):
        status, title, detail = exc.status_code, exc.title, exc.detail
    elif isinstance(exc, HTTPException):
        status, title, detail = exc.status_code, "Something is not right", exc.detail
    elif isinstance(exc, UnicodeDecodeError):
        status, title, detail = 400, "Something is not right", UNDECODABLE
    else:  # pragma: no cover (the app's own handler logs the rest)
        raise exc
    return page(request, "error.html", status_code=status, title=title, detail=detail)


def sentence(text: str) -> str:
    """A service's message as a sentence: a capital first letter (names kept as they are)
    and a full stop."""
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else text


TEMPLATE_FILTERS = {
    "sentence": sentence,
    "hm": format_minutes,
    "hm_signed": lambda minutes: format_minutes(minutes, signed=True),
    "in_words": describe_minutes,
    "state_label": lambda state: STATE_LABELS.get(state, state),
    # A participant as coordinators see them (``ParticipantPublic``) → how to reach them.
    "reach": lambda person: how_to_reach(
        person.contact_preference, person.email, person.phone, person.postal_address
    ),
}
