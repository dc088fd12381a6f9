"""Sign-in, sign-out, invitations and API tokens over JSON."""

from __future__ import annotations

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from timebank.auth.deps import provide_principal, session_cookie, signed_out_cookie
from timebank.auth.schemas import (
    InvitationAccept,
    InvitationAccepted,
    LoginRequest,
    LoginResponse,
    MePublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
)
from timebank.deps import AuthDep, PrincipalDep, SettingsDep
from timebank.openapi import problems


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post(
        "/login",
        status_code=HTTP_200_OK,
        security=[],
        responses=problems(401, 422, 429),
    )
    async def login(
        self, request: Request, data: JSONBody[LoginRequest], auth: AuthDep, settings: SettingsDep
    ) -> Response[LoginResponse]:
        """Sign in with email and password: a bearer token, and the session cookie."""
        client = request.client.host if request.client else "unknown"
        session = await auth.login(data.email, data.password, client)
        return Response(session, cookies=[session_cookie(session, settings)])

    @post(
        "/logout",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(401, 403),
        # Forget the session cookie under either name (see auth.deps.cookie_name).
        response_cookies=[
            signed_out_cookie(secure=True),
            signed_out_cookie(secure=False),
        ],
    )
    async def logout(self, principal: PrincipalDep, auth: AuthDep) -> None:
        """Sign out: the session or token used for this request stops working."""
        await auth.logout(principal)

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

    @post("/tokens", status_code=HTTP_201_CREATED, responses=problems(401, 403, 422))
    async def create_token(
        self, principal: PrincipalDep, auth: AuthDep, data: JSONBody[TokenCreate]
    ) -> TokenCreated:
        """A new API token; its secret appears in this response only."""
        return await auth.create_token(principal, data.name)

    @delete(
        "/tokens/{token_id:int}",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(401, 403, 404, 422),
    )
    async def revoke_token(
        self, token_id: FromPath[int], principal: PrincipalDep, auth: AuthDep
    ) -> None:
        """Revoke one of the caller's tokens."""
        await auth.revoke_token(principal, token_id)
