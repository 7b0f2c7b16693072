"""Sign-up, sign-in, token refresh and sign-out: identity's public RPCs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from superapp.identity.v1 import identity_service_pb2 as pb

from bff import conversions, schemas
from bff.client_address import forwarded_for
from bff.dependencies import IdempotencyKey, UpstreamsDep
from bff.openapi import errors
from bff.rate_limits import limit_auth

__all__ = ["router"]

router = APIRouter(prefix="/v1/auth", tags=["auth"], dependencies=[Depends(limit_auth)])


@router.post(
    "/register",
    status_code=201,
    response_model=schemas.UserProfile,
    responses=errors(409, 413, 429),
    summary="Create an account",
)
async def register(
    body: schemas.RegisterRequest, key: IdempotencyKey, upstreams: UpstreamsDep
) -> schemas.UserProfile:
    """Sign up; sign in afterwards with `/v1/auth/login`. The wallet opens shortly after
    (until then wallet calls answer 404 `WALLET_NOT_FOUND`)."""
    reply = await upstreams.identity.RegisterUser(
        pb.RegisterUserRequest(
            email=body.email,
            password=body.password,
            display_name=body.display_name,
            request_id=key,
        )
    )
    return conversions.user(reply.user)


@router.post(
    "/login",
    response_model=schemas.LoginResult,
    responses=errors(401, 413, 429),
    summary="Sign in",
)
async def login(
    body: schemas.LoginRequest, request: Request, upstreams: UpstreamsDep
) -> schemas.LoginResult:
    """Start a session: an access token for the `Authorization: Bearer` header and a
    refresh token. Repeated failures for one email from one client address are met with
    growing delays, and too many failures from one address across emails with a pause
    (429 `TOO_MANY_ATTEMPTS` with `Retry-After`); other addresses are not affected."""
    reply = await upstreams.identity.Login(
        pb.LoginRequest(email=body.email, password=body.password),
        metadata=forwarded_for(request),
    )
    return schemas.LoginResult(
        tokens=conversions.tokens(reply.tokens), user=conversions.user(reply.user)
    )


@router.post(
    "/refresh",
    response_model=schemas.Tokens,
    responses=errors(401, 413, 429),
    summary="Exchange a refresh token",
)
async def refresh(body: schemas.RefreshRequest, upstreams: UpstreamsDep) -> schemas.Tokens:
    """A new token pair; the refresh token sent is used up. Sending a used one again ends
    the whole session (401 `REFRESH_TOKEN_REUSED`)."""
    reply = await upstreams.identity.RefreshToken(
        pb.RefreshTokenRequest(refresh_token=body.refresh_token)
    )
    return conversions.tokens(reply.tokens)


@router.post(
    "/logout",
    status_code=204,
    response_class=Response,
    responses=errors(413, 429),
    summary="End a session",
)
async def logout(body: schemas.RefreshRequest, upstreams: UpstreamsDep) -> Response:
    """Revoke the session of a refresh token. Succeeds for unknown tokens too."""
    await upstreams.identity.Logout(pb.LogoutRequest(refresh_token=body.refresh_token))
    return Response(status_code=204)
