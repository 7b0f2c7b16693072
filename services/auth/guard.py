"""The handler guard that authenticates every RPC by its declared policy.

It reads `authorization: Bearer <token>`, verifies the token, checks the policy's roles
and binds the `Caller` for the handler (`current_caller()`). A mini-app token (JOSE
`typ` `miniapp+jwt`) is admitted only where the policy names a scope for mini-apps: it
is verified with `MiniAppTokenVerifier` (identity's keys, then introspection) and the
handler sees a `MiniAppCaller` (`current_mini_app()`) instead. Refusals are answered with
the same rich status (ErrorInfo in the service's domain) that ErrorGuard gives, so the
guard may sit anywhere in the chain; `start_grpc_service` puts it innermost. It wraps
each handler once, at registration (`GuardedServer`), not per call.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import jwt

from services.auth.caller import Caller, acting_as, acting_as_mini_app
from services.auth.miniapp_verifier import MiniAppCaller, MiniAppTokenVerifier
from services.auth.policy import Access, Policy, PolicyError, ServicePolicies
from services.auth.token_format import MINIAPP_TOKEN_TYPE, TOKEN_TYPE
from services.auth.verifier import TokenVerifier
from services.runtime.errors import (
    FailedPrecondition,
    PermissionDenied,
    ServiceError,
    Unauthenticated,
    Unavailable,
)
from services.runtime.rich_status import to_grpc_status

__all__ = ["AuthGuard"]

_log = logging.getLogger(__name__)

# Infrastructure every service serves; probes and tools must not need a user's token.
_ALWAYS_OPEN = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

# RFC 9068: with or without the media-type prefix.
_USER_TOKEN_TYPES = frozenset({TOKEN_TYPE, f"application/{TOKEN_TYPE}"})

_Behavior = Callable[[Any, Any], Any]
_Context = grpc.aio.ServicerContext[Any, Any]
_Metadata = Sequence[tuple[str, str | bytes]]


def _malformed() -> Unauthenticated:
    return Unauthenticated("UNAUTHENTICATED", "malformed authorization header")


def _token_type(token: str) -> str | None:
    """`token`'s JOSE `typ`, lower case, unverified: it only picks the verifier, and each
    verifier checks the type again with the signature. None when there is none."""
    try:
        typ = jwt.get_unverified_header(token).get("typ")
    except jwt.InvalidTokenError:
        return None  # the verifier says what is wrong with it
    return typ.lower() if isinstance(typ, str) else None


def _bearer_token(values: Sequence[str | bytes]) -> str:
    if len(values) != 1 or not isinstance(values[0], str):
        raise _malformed()
    parts = values[0].split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise _malformed()
    return parts[1]


class AuthGuard:
    """Admits each call to a declared RPC by that RPC's policy; refuses undeclared ones."""

    def __init__(
        self,
        verifier: TokenVerifier,
        services: Sequence[ServicePolicies],
        *,
        domain: str,
        mini_apps: MiniAppTokenVerifier | None = None,
    ) -> None:
        """`domain` is the service's `ErrorInfo.domain`; raises PolicyError on a bad plan.

        `mini_apps` verifies the mini-app tokens of RPCs whose policy admits them; without
        it (a service with no client credentials to introspect with) such a token is
        FAILED_PRECONDITION `MINI_APP_TOKENS_NOT_CONFIGURED`."""
        policies: dict[str, Policy] = {}
        for declared in services:
            paths = declared.by_path()
            if policies.keys() & paths.keys():
                raise PolicyError(f"{declared.service.full_name} is declared twice")
            for method in declared.service.methods:
                policy = declared.methods[method.name]
                if method.server_streaming and policy.access is not Access.TOKEN_IGNORED:
                    # Binding the caller around a response stream is not built yet.
                    raise PolicyError(f"{method.full_name}: streaming RPCs must be TOKEN_IGNORED")
            policies.update(paths)
        if not policies:
            raise PolicyError("no service policies declared")
        self._policies = policies
        self._verifier = verifier
        self._mini_apps = mini_apps
        # Only a service that takes mini-app tokens somewhere names the wrong kind; the
        # others refuse one as any token that is not theirs (UNAUTHENTICATED).
        self._takes_mini_apps = any(policy.mini_app_scope for policy in policies.values())
        self._domain = domain

    def guard(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """`handler` admitting calls by `method`'s policy; a refusal if it has none."""
        if method.startswith(_ALWAYS_OPEN):
            return handler
        policy = self._policies.get(method)
        if policy is None:
            _log.error("refusing %s: the service declared no access policy for it", method)
            denied = PermissionDenied("PERMISSION_DENIED", "no access policy for this RPC")
            return self._refusal(handler, denied)
        if policy.access is Access.TOKEN_IGNORED:
            return handler
        return self._guarded(handler, policy)

    async def _admit(self, values: Sequence[str | bytes], policy: Policy) -> Caller | MiniAppCaller:
        if not values:
            raise Unauthenticated("UNAUTHENTICATED", "missing bearer token")
        token = _bearer_token(values)
        typ = _token_type(token)
        if self._takes_mini_apps and typ == MINIAPP_TOKEN_TYPE:
            return await self._admit_mini_app(token, policy)
        if policy.access is Access.MINI_APP:
            if typ in _USER_TOKEN_TYPES:
                raise Unauthenticated(
                    "MINI_APP_TOKEN_REQUIRED", "this RPC takes a mini-app's token, not a user's"
                )
            raise Unauthenticated("UNAUTHENTICATED", "not a mini-app token")
        caller = await self._verifier.verify(token)
        if policy.roles and not caller.has_role(*policy.roles):
            raise PermissionDenied("PERMISSION_DENIED", "the caller lacks a role this RPC requires")
        return caller

    async def _admit_mini_app(self, token: str, policy: Policy) -> MiniAppCaller:
        if not policy.mini_app_scope:
            # Unauthenticated, as the BFF answers a wrong kind of token: the token is
            # no credential for this RPC at all.
            raise Unauthenticated(
                "USER_TOKEN_REQUIRED", "this RPC takes a user's own token, not a mini-app's"
            )
        if self._mini_apps is None:
            raise FailedPrecondition(
                "MINI_APP_TOKENS_NOT_CONFIGURED",
                "this deployment cannot check mini-app tokens (the service has no client "
                "credentials of its own)",
            )
        try:
            # The token is the mini-app's own credential here (the BFF forwards it).
            caller = await self._mini_apps.verify_for_itself(token)
        except grpc.aio.AioRpcError as error:
            # Identity away (or refusing this service's own token): the token's standing
            # is unknown, so the call is refused as retryable, never admitted.
            _log.warning("introspecting a mini-app token failed: %s", error.code().name)
            raise Unavailable(
                "UNAVAILABLE", "cannot check the mini-app token with identity now"
            ) from None
        caller.require_scope(policy.mini_app_scope)
        return caller

    def _guarded(
        self, handler: grpc.RpcMethodHandler[Any, Any], policy: Policy
    ) -> grpc.RpcMethodHandler[Any, Any]:
        inner: _Behavior | None = handler.unary_unary or handler.stream_unary
        assert inner is not None, "streaming responses are refused at construction"
        domain = self._domain
        optional = policy.access is Access.PUBLIC

        async def behavior(request: Any, context: _Context) -> Any:
            values = [
                value
                for key, value in context.invocation_metadata() or ()
                if key == "authorization"
            ]
            if not values and optional:
                result = inner(request, context)
                return await result if inspect.isawaitable(result) else result
            try:
                caller = await self._admit(values, policy)
            except ServiceError as error:
                await context.abort_with_status(to_grpc_status(error, domain))
            bound = acting_as(caller) if isinstance(caller, Caller) else acting_as_mini_app(caller)
            with bound:
                result = inner(request, context)
                return await result if inspect.isawaitable(result) else result

        factory = (
            grpc.unary_unary_rpc_method_handler
            if handler.unary_unary is not None
            else grpc.stream_unary_rpc_method_handler
        )
        return factory(behavior, handler.request_deserializer, handler.response_serializer)

    def _refusal(
        self, handler: grpc.RpcMethodHandler[Any, Any], error: ServiceError
    ) -> grpc.RpcMethodHandler[Any, Any]:
        status = to_grpc_status(error, self._domain)

        # grpc.aio also takes a coroutine for streaming responses (it would use write()).
        async def refuse(request: Any, context: _Context) -> None:
            await context.abort_with_status(status)

        serializers = (handler.request_deserializer, handler.response_serializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(refuse, *serializers)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(refuse, *serializers)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(refuse, *serializers)
        return grpc.stream_stream_rpc_method_handler(refuse, *serializers)
