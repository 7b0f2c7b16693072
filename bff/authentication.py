"""Who is calling: the verified bearer token, and only it.

The BFF verifies the access token itself (the same `TokenVerifier` the services use,
fed by identity's JWKS) so that it answers 401 without a round trip and knows the user
id for paths like "my wallet". The same `authorization` value is sent upstream, where
each service verifies it again and enforces its own rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.auth.caller import Caller
from services.auth.roles import Role
from services.auth.verifier import TokenVerifier
from services.runtime.errors import PermissionDenied, Unauthenticated

__all__ = [
    "Admin",
    "MaybeSignedIn",
    "Principal",
    "SignedIn",
    "require_principal",
]

# auto_error=False: the 401 is ours, as problem+json; the scheme documents the header.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="accessToken",
    description="An access token from POST /v1/auth/login or /v1/auth/refresh.",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller and the metadata that carries their token upstream."""

    caller: Caller
    metadata: tuple[tuple[str, str], ...]

    @property
    def user_id(self) -> str:
        """The token's subject."""
        return self.caller.user_id


def _verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.verifier
    return verifier


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(
            "UNAUTHENTICATED", "the authorization header must be 'Bearer <token>'"
        )
    token = credentials.credentials
    caller = await _verifier(request).verify(token)
    return Principal(caller, (("authorization", f"Bearer {token}"),))


async def require_principal(
    principal: Annotated[Principal | None, Depends(_principal)],
) -> Principal:
    """The caller; 401 without a valid bearer token."""
    if principal is None:
        raise Unauthenticated("UNAUTHENTICATED", "a bearer token is required")
    return principal


async def _admin(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    if not principal.caller.has_role(Role.ADMIN):
        raise PermissionDenied("PERMISSION_DENIED", "this operation needs the admin role")
    return principal


SignedIn = Annotated[Principal, Depends(require_principal)]
"""A route parameter: the verified caller (401 otherwise)."""
MaybeSignedIn = Annotated[Principal | None, Depends(_principal)]
"""A route parameter: the verified caller, or None without a token (a bad token is 401)."""
Admin = Annotated[Principal, Depends(_admin)]
"""A route parameter: a verified caller with the admin role (401 / 403 otherwise)."""
