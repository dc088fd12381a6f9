"""Signing in and out, accepting an invitation, and choosing a timebank."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.params import QueryParameter
from pydantic import ValidationError

from timebank.auth.deps import client_address, session_cookie, signed_out_cookie
from timebank.auth.schemas import InvitationAccept, LoginRequest, PasswordReset
from timebank.auth.secrets import check_password_rules
from timebank.auth.service import AuthService
from timebank.deps import AuthDep, PrincipalDep, SettingsDep
from timebank.errors import (
    Conflict,
    NotFound,
    Overloaded,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from timebank.web.render import SIGN_IN, local_path, page, redirect, sentence
from timebank.web.session import page_principal_or_none

RESET_GONE = "This password reset is unknown, already used or expired. Ask for a new one."
INVITATION_GONE = (
    "This invitation is unknown, already used or expired. Ask your coordinator for a new one."
)
SIGN_IN_TO_ACCEPT = (
    "An account already uses the address this invitation was sent to. Sign in to accept it."
)


class AccountPages(Controller):
    path = "/"

    @get("/")
    async def start(self, principal: PrincipalDep, auth: AuthDep, request: Request) -> Response:
        """Straight to one's timebank; a choice when there are several."""
        me = await auth.me(principal)
        if len(me.timebanks) == 1:
            return redirect(f"/t/{me.timebanks[0].slug}")
        return page(request, "choose.html", me=me)

    @get("/sign-in")
    async def sign_in_form(
        self, request: Request, next_page: Annotated[str | None, QueryParameter(name="next")] = None
    ) -> Response:
        """The sign-in form."""
        return page(request, "sign_in.html", email="", next_page=local_path(next_page, "/"))

    @post("/sign-in")
    async def sign_in(self, request: Request, auth: AuthDep, settings: SettingsDep) -> Response:
        """Sign in with email and password; the same pause after repeated failures as the API."""
        form = await request.form()
        email = str(form.get("email", "")).strip()
        next_page = local_path(str(form.get("next", "")), "/")
        headers: dict[str, str] = {}
        try:
            credentials = LoginRequest(email=email, password=str(form.get("password", "")))
            session = await auth.login(
                credentials.email, credentials.password, client_address(request)
            )
        except (ValidationError, Unauthenticated):
            error, status = "That email and password do not match an account.", 401
        except (RateLimited, Overloaded) as refused:
            wait = int(refused.extra.get("retry_after", 1))
            headers["Retry-After"] = str(wait)
            status = refused.status_code
            error = (
                f"Too many tries. Wait {_duration(wait)}, then try again."
                if isinstance(refused, RateLimited)
                else "The service is busy. Try again in a moment."
            )
        else:
            response = redirect(next_page)
            response.set_cookie(session_cookie(session, settings))
            return response
        form_again = page(
            request,
            "sign_in.html",
            status_code=status,
            email=email,
            next_page=next_page,
            error=error,
        )
        form_again.headers.update(headers)
        return form_again

    @post("/sign-out")
    async def sign_out(self, principal: PrincipalDep, auth: AuthDep) -> Response:
        """Sign out: this browser's session stops working."""
        await auth.logout(principal)
        response = redirect(SIGN_IN)
        response.set_cookie(signed_out_cookie(auth.settings.cookie_secure))
        return response

    @get("/invitation")
    async def invitation_form(
        self,
        request: Request,
        auth: AuthDep,
        token: Annotated[str, QueryParameter(max_length=200)] = "",
    ) -> Response:
        """Accept an invitation: signed in, with one's own account; else by choosing a
        password (a new account), or by signing in first."""
        return await _invitation_page(request, auth, token, {})

    @post("/invitation")
    async def accept_invitation(
        self, request: Request, auth: AuthDep, settings: SettingsDep
    ) -> Response:
        """Set the password the invitation asks for (a new account), and be signed in."""
        form = await request.form()
        token = str(form.get("token", ""))
        password = str(form.get("password", ""))
        errors = _password_errors(password)
        status = 422
        if not errors and password != form.get("password_again"):
            errors["password_again"] = "The two passwords are not the same."  # noqa: S105
        if not errors:
            try:
                accepted = InvitationAccept(token=token, password=password)
                assert accepted.password is not None
                session = await auth.accept_invitation(accepted.token, accepted.password)
            except (ValidationError, NotFound):
                errors["token"], status = INVITATION_GONE, 404
            except Conflict:
                errors["token"], status = SIGN_IN_TO_ACCEPT, 409
            except ValidationFailed as refused:  # e.g. the password is the invited address
                errors["password"] = sentence(refused.detail)
            else:
                response = redirect("/")
                response.set_cookie(session_cookie(session, settings))
                return response
        return await _invitation_page(request, auth, token, errors, status)

    @post("/invitation/join")
    async def join(self, request: Request, principal: PrincipalDep, auth: AuthDep) -> Response:
        """Accept an invitation with the signed-in account: take part as it says."""
        form = await request.form()
        token = str(form.get("token", ""))
        try:
            accepted = InvitationAccept(token=token)
            joined = await auth.accept_invitation_as(principal, accepted.token)
        except (ValidationError, NotFound):
            return await _invitation_page(request, auth, token, {"token": INVITATION_GONE}, 404)
        except Conflict as error:
            return await _invitation_page(request, auth, token, {"token": error.detail}, 409)
        return redirect(f"/t/{joined.timebank_slug}")

    @get("/reset-password")
    async def reset_form(
        self, request: Request, token: Annotated[str, QueryParameter(max_length=200)] = ""
    ) -> Response:
        """Use a password reset: choose a new password."""
        return page(request, "reset_password.html", token=token, errors={})

    @post("/reset-password")
    async def reset_password(self, request: Request, auth: AuthDep) -> Response:
        """Set the new password; every session ends, so sign in again."""
        form = await request.form()
        token = str(form.get("token", ""))
        password = str(form.get("password", ""))
        errors = _password_errors(password)
        if not errors and password != form.get("password_again"):
            errors["password_again"] = "The two passwords are not the same."  # noqa: S105
        if not errors:
            try:
                reset = PasswordReset(token=token, password=password)
                await auth.reset_password(reset.token, reset.password)
            except (ValidationError, NotFound):
                errors["token"] = RESET_GONE
            except ValidationFailed as refused:
                errors["password"] = sentence(refused.detail)
            else:
                return redirect(SIGN_IN)
        status = 404 if "token" in errors else 422
        return page(request, "reset_password.html", status_code=status, token=token, errors=errors)


async def _invitation_page(
    request: Request,
    auth: AuthService,
    token: str,
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    principal = await page_principal_or_none(request, auth)
    back_here = "/invitation?" + urlencode({"token": token})
    return page(
        request,
        "invitation.html",
        status_code=status_code,
        token=token,
        errors=errors,
        signed_in_as=principal.email if principal else None,
        sign_in_first=f"{SIGN_IN}?" + urlencode({"next": back_here}),
    )


def _password_errors(password: str) -> dict[str, str]:
    """The password rules of the API (``check_password_rules``), as a form's message."""
    try:
        check_password_rules(password)
    except ValidationFailed as refused:
        return {"password": sentence(refused.detail)}
    return {}


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{round(seconds / 60)} minutes"
