"""Access-token authentication and RPC access policies, shared by every service.

Identity issues EdDSA access tokens and publishes its public keys (`GetJwks`); every
service verifies tokens locally (`TokenVerifier` over a `JwksCache`) in `AuthGuard`,
which enforces each RPC's declared `Policy` and binds the `Caller` for handlers.
Mini-app tokens (their own type, never a user's) go through `MiniAppTokenVerifier`.
"""

from services.auth.caller import (
    Caller,
    acting_as,
    acting_as_mini_app,
    current_caller,
    current_mini_app,
    require_caller,
    require_mini_app,
)
from services.auth.guard import AuthGuard
from services.auth.jwks import JwksCache, JwksFetcher, grpc_jwks_fetcher
from services.auth.miniapp_tokens import MiniAppClaims, MiniAppTokenReader
from services.auth.miniapp_verifier import (
    MiniAppCaller,
    MiniAppTokenVerifier,
    miniapp_verifier,
)
from services.auth.policy import (
    AUTHENTICATED,
    PUBLIC,
    TOKEN_IGNORED,
    Access,
    Policy,
    PolicyError,
    ServicePolicies,
    authenticated,
    mini_app,
    user_or_mini_app,
)
from services.auth.roles import KNOWN_ROLES, Role
from services.auth.token_format import ALGORITHM, TOKEN_TYPE, JwkDict
from services.auth.verifier import DEFAULT_LEEWAY, TokenVerifier

__all__ = [
    "ALGORITHM",
    "AUTHENTICATED",
    "DEFAULT_LEEWAY",
    "KNOWN_ROLES",
    "PUBLIC",
    "TOKEN_IGNORED",
    "TOKEN_TYPE",
    "Access",
    "AuthGuard",
    "Caller",
    "JwkDict",
    "JwksCache",
    "JwksFetcher",
    "MiniAppCaller",
    "MiniAppClaims",
    "MiniAppTokenReader",
    "MiniAppTokenVerifier",
    "Policy",
    "PolicyError",
    "Role",
    "ServicePolicies",
    "TokenVerifier",
    "acting_as",
    "acting_as_mini_app",
    "authenticated",
    "current_caller",
    "current_mini_app",
    "grpc_jwks_fetcher",
    "mini_app",
    "miniapp_verifier",
    "require_caller",
    "require_mini_app",
    "user_or_mini_app",
]
