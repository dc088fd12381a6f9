"""Sign-in, sign-out, passwords, invitations and API tokens over JSON."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from timebank.auth.deps import (
    client_address,
    provide_principal,
    session_cookie,
    signed_out_cookie,
)
from timebank.auth.schemas import (
    InvitationAccept,
    InvitationAccepted,
    LoginRequest,
    LoginResponse,
    MePublic,
    PasswordChange,
    PasswordReset,
    TokenCreate,
    TokenCreated,
    TokenPublic,
)
from timebank.deps import AuthDep, PrincipalDep, SettingsDep
from timebank.openapi import TokenId, problems

# A route that signs out answers nothing, and forgets the session cookie under either name
# (see auth.deps.cookie_name).
_SIGNS_OUT: dict[str, Any] = {
    "status_code": HTTP_204_NO_CONTENT,
    "responses": problems(401, 403),
    "response_cookies": (signed_out_cookie(secure=True), signed_out_cookie(secure=False)),
}


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post(
        "/login",
        status_code=HTTP_200_OK,
        security=[],
        responses=problems(401, 403, 415, 422, 429, 503),
    )
    async def login(
        self, request: Request, data: JSONBody[LoginRequest], auth: AuthDep, settings: SettingsDep
    ) -> Response[LoginResponse]:
        """Sign in with email and password: a bearer token, and the session cookie. Failed
        tries slow further ones (429 with Retry-After while a delay runs)."""
        session = await auth.login(data.email, data.password, client_address(request))
        return Response(session, cookies=[session_cookie(session, settings)])

    @post("/logout", **_SIGNS_OUT)
    async def logout(self, principal: PrincipalDep, auth: AuthDep) -> None:
        """Sign out: the session or token used for this request stops working."""
        await auth.logout(principal)

    @post("/sign-out-everywhere", **_SIGNS_OUT)
    async def sign_out_everywhere(self, principal: PrincipalDep, auth: AuthDep) -> None:
        """End every session and API token of the caller, this one included."""
        await auth.sign_out_everywhere(principal)

    @post(
        "/invitations/accept",
        status_code=HTTP_200_OK,
        security=[],
        responses=problems(401, 403, 404, 409, 422),
    )
    async def accept_invitation(
        self,
        request: Request,
        data: JSONBody[InvitationAccept],
        auth: AuthDep,
        settings: SettingsDep,
    ) -> Response[LoginResponse | InvitationAccepted]:
        """Accept an invitation: with a password, as a new account for its address (and be
        signed in); without, signed in (bearer token or session) with one's own account."""
        if data.password is None:
            principal = await provide_principal(request, request.app.state)
            return Response(await auth.accept_invitation_as(principal, data.token))
        session = await auth.accept_invitation(data.token, data.password)
        return Response(session, cookies=[session_cookie(session, settings)])

    @get("/me", responses=problems(401))
    async def me(self, principal: PrincipalDep, auth: AuthDep) -> MePublic:
        """Who is signed in, and their roles in each timebank."""
        return await auth.me(principal)

    @get("/tokens", responses=problems(401))
    async def list_tokens(self, principal: PrincipalDep, auth: AuthDep) -> list[TokenPublic]:
        """The caller's sessions and API tokens, without their secrets."""
        return await auth.list_tokens(principal)

    @post("/tokens", status_code=HTTP_201_CREATED, responses=problems(401, 403, 415, 422))
    async def create_token(
        self, principal: PrincipalDep, auth: AuthDep, data: JSONBody[TokenCreate]
    ) -> TokenCreated:
        """A new API token, lasting ``expires_in_days`` (90 by default); its secret appears in
        this response only."""
        return await auth.create_token(principal, data.name, data.expires_in_days)

    @delete(
        "/tokens/{token_id:int}",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(401, 403, 404, 422),
    )
    async def revoke_token(self, token_id: TokenId, principal: PrincipalDep, auth: AuthDep) -> None:
        """Revoke one of the caller's tokens."""
        await auth.revoke_token(principal, token_id)

    @post(
        "/password",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(401, 403, 415, 422, 429, 503),
    )
    async def change_password(
        self,
        request: Request,
        principal: PrincipalDep,
        auth: AuthDep,
        data: JSONBody[PasswordChange],
    ) -> None:
        """Change one's password, giving the current one. Every other session and API token
        ends; the one of this request stays (``/sign-out-everywhere`` ends it too)."""
        await auth.change_password(
            principal, data.current_password, data.new_password, client_address(request)
        )

    @post(
        "/password-reset",
        status_code=HTTP_204_NO_CONTENT,
        security=[],
        responses=problems(403, 404, 415, 422, 503),
    )
    async def reset_password(self, data: JSONBody[PasswordReset], auth: AuthDep) -> None:
        """Use a one-time password reset (``timebank admin reset-password``): set a new
        password. Every session and API token of the account ends; sign in afresh."""
        await auth.reset_password(data.token, data.password)
