"""Who is calling the mini-app API: a mini-app's backend with a token a user granted it.

A mini-app's backend (a third party on the internet) reaches the platform only here,
with `Authorization: Bearer <miniapp+jwt>` from `POST /oauth2/token`. One dependency
does all a route needs before it runs:

1. verify the token: identity's signature, type `miniapp+jwt` (a user's `at+jwt` is
   refused with its own reason, so a developer who sent the wrong token learns which),
   issuer and expiry, then identity's introspection, remembered for
   `BFF_MINI_APP_TOKEN_CACHE_SECONDS` (2 s): a revoked grant or a suspended mini-app
   stops working on every replica within that;
2. count the call against the mini-app's rate limit and daily quota (by client id);
3. count the call, and its failure if the route fails, in the per-mini-app metrics,
   labelled by the client id identity vouched for (an unauthenticated caller is no
   label: its client id is whatever it typed).

Routes declare `MiniAppCallerDep` and, for a scope, `require_scope`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

import grpc
import jwt
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bff.mini_app_metrics import MiniAppMetrics
from bff.rate_limits import RateLimits
from bff.service_identity import ServiceIdentity, not_configured, platform_failures
from services.auth.miniapp_verifier import MiniAppCaller
from services.auth.token_format import TOKEN_TYPE
from services.runtime.errors import PermissionDenied, ServiceError, Unauthenticated
from services.runtime.status_details import StatusDetails

__all__ = [
    "MINI_APP_API_PREFIX",
    "MiniAppCaller",
    "MiniAppCallerDep",
    "mini_app_caller",
    "require_scope",
    "service_identity",
    "with_scope",
]

MINI_APP_API_PREFIX = "/v1/mini-app-api"

# auto_error=False: the 401 is ours, as problem+json; the scheme documents the header.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="miniAppToken",
    description="A mini-app's access token (JOSE type miniapp+jwt) from POST "
    "/oauth2/token, for the mini-app's backend. A user's access token is refused.",
)


def service_identity(request: Request) -> ServiceIdentity:
    """The BFF's service identity; 503 `MINI_APP_API_NOT_CONFIGURED` without one."""
    identity: ServiceIdentity | None = request.app.state.service_identity
    if identity is None:
        raise not_configured()
    return identity


def _refuse_user_tokens(token: str) -> None:
    """401 `MINI_APP_TOKEN_REQUIRED` for a user's access token: a common mistake with a
    precise answer. Anything else is the verifier's to judge."""
    try:
        typ = jwt.get_unverified_header(token).get("typ")
    except jwt.InvalidTokenError:
        return
    if isinstance(typ, str) and typ.lower() == TOKEN_TYPE:
        raise Unauthenticated(
            "MINI_APP_TOKEN_REQUIRED",
            "this API takes a mini-app's token (miniapp+jwt from POST /oauth2/token), "
            "not a user's access token",
        )


async def _verified(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> MiniAppCaller:
    identity = service_identity(request)
    if request.headers.get("authorization") is None:
        raise Unauthenticated("UNAUTHENTICATED", "a mini-app's bearer token is required")
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(
            "UNAUTHENTICATED", "the authorization header must be 'Bearer <token>'"
        )
    _refuse_user_tokens(credentials.credentials)
    async with platform_failures("asking identity about the mini-app token"):
        return await identity.verifier.verify_for_itself(credentials.credentials)


def _error_name(error: Exception) -> str:
    """The label of a failed call: the problem's reason, as the client sees it."""
    if isinstance(error, ServiceError):
        return error.reason
    if isinstance(error, RequestValidationError):
        return "INVALID_ARGUMENT"
    if isinstance(error, grpc.aio.AioRpcError):
        info = StatusDetails.of(error).error_info
        return info.reason if info is not None else error.code().name
    return type(error).__name__


async def mini_app_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AsyncIterator[MiniAppCaller]:
    """The verified mini-app caller, counted against its limits and in its metrics;
    401 / 429 / 503 problem+json otherwise."""
    caller = await _verified(request, credentials)
    metrics: MiniAppMetrics = request.app.state.mini_app_metrics
    route = request.scope.get("route")
    template = getattr(route, "path", MINI_APP_API_PREFIX)
    limits: RateLimits = request.app.state.rate_limits
    try:
        await limits.hit_mini_app(caller.client_id)
    except ServiceError as error:
        metrics.called(caller.client_id, template, error.reason)
        raise
    try:
        yield caller
    except Exception as error:
        metrics.called(caller.client_id, template, _error_name(error))
        raise
    metrics.called(caller.client_id, template)


MiniAppCallerDep = Annotated[MiniAppCaller, Depends(mini_app_caller)]
"""A route parameter: the verified, counted mini-app caller (401 / 429 / 503 otherwise).
Its `user_id` is for the platform's own calls: never put it in an answer."""


def require_scope(caller: MiniAppCaller, scope: str) -> None:
    """403 `SCOPE_NOT_GRANTED` unless the user granted the mini-app `scope`."""
    if scope not in caller.scopes:
        raise PermissionDenied(
            "SCOPE_NOT_GRANTED",
            f"the user did not grant this mini-app the scope {scope!r}",
            metadata={"scope": scope, "client_id": caller.client_id},
        )


def with_scope(scope: str) -> Callable[[MiniAppCaller], Awaitable[MiniAppCaller]]:
    """A dependency: the mini-app caller, if the user granted it `scope` (403
    `SCOPE_NOT_GRANTED` otherwise). `Annotated[MiniAppCaller, Depends(with_scope(...))]`."""

    async def granted(caller: MiniAppCallerDep) -> MiniAppCaller:
        require_scope(caller, scope)
        return caller

    return granted
