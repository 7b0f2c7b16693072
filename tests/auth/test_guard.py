# ruff: noqa: N802  (the test servicer implements PascalCase gRPC methods)
"""The auth guard on a real grpc.aio server: policies, roles, rich errors, the caller.

The server is built by the shared runtime (`start_grpc_service`: tracing → error mapping →
auth) around a small IdentityService whose handlers report the caller they see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from opentelemetry.sdk.trace import TracerProvider
from superapp.catalogue.v1 import catalogue_service_pb2, catalogue_service_pb2_grpc
from superapp.identity.v1 import identity_service_pb2 as pb
from superapp.identity.v1 import identity_service_pb2_grpc

from services.auth import (
    AUTHENTICATED,
    PUBLIC,
    TOKEN_IGNORED,
    Access,
    AuthGuard,
    JwksCache,
    Policy,
    PolicyError,
    ServicePolicies,
    TokenVerifier,
    authenticated,
    current_caller,
    grpc_jwks_fetcher,
    mini_app,
    require_caller,
    user_or_mini_app,
)
from services.identity.access_tokens import AccessTokenIssuer
from services.identity.signing_keys import SigningKeys
from services.runtime.health_client import check_health
from services.runtime.ids import new_id
from services.runtime.serving import GrpcService, ServiceSpec, start_grpc_service
from services.runtime.settings import ServiceSettings
from tests.auth.conftest import AUDIENCE, ISSUER, TTL, FakeClock
from tests.services.rich_errors import rich_error

IDENTITY = pb.DESCRIPTOR.services_by_name["IdentityService"]
DOMAIN = "test.superapp"
POLICIES = ServicePolicies(
    IDENTITY,
    {
        "RegisterUser": TOKEN_IGNORED,
        "Login": TOKEN_IGNORED,
        "RefreshToken": TOKEN_IGNORED,
        "Logout": TOKEN_IGNORED,
        "GetJwks": PUBLIC,
        "GetUser": AUTHENTICATED,
        "UpdateUser": AUTHENTICATED,
        "SetUserRoles": authenticated("admin"),
        "IssueServiceToken": TOKEN_IGNORED,
        "AuthorizeMiniApp": AUTHENTICATED,
        "ExchangeAuthorizationCode": TOKEN_IGNORED,
        "ListMyGrants": AUTHENTICATED,
        "RevokeGrant": AUTHENTICATED,
        "IntrospectMiniAppToken": authenticated("system"),
    },
)
Context = grpc.aio.ServicerContext[Any, Any]


def _user(user_id: str = "", token_id: str = "", roles: frozenset[str] = frozenset()) -> pb.User:
    return pb.User(
        user_id=user_id,
        display_name=token_id,
        roles=sorted(pb.Role.Value(f"ROLE_{role.upper()}") for role in roles),
    )


class CallerEcho(identity_service_pb2_grpc.IdentityServiceServicer):
    """Answers with the caller each handler sees; RegisterUser etc. stay UNIMPLEMENTED."""

    def __init__(self, keys: SigningKeys) -> None:
        self._keys = keys

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.LoginResponse:
        caller = current_caller()
        return pb.LoginResponse(user=_user(caller.user_id if caller else ""))

    async def GetJwks(self, request: pb.GetJwksRequest, context: Context) -> pb.GetJwksResponse:
        caller = current_caller()
        context.set_trailing_metadata((("caller", caller.user_id if caller else "-"),))
        return pb.GetJwksResponse(keys=[pb.Jwk(**jwk) for jwk in self._keys.jwks()])

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.GetUserResponse:
        caller = require_caller()
        return pb.GetUserResponse(user=_user(caller.user_id, caller.token_id, caller.roles))

    async def UpdateUser(
        self, request: pb.UpdateUserRequest, context: Context
    ) -> pb.UpdateUserResponse:
        require_caller().check_may_act_for(request.user.user_id)
        return pb.UpdateUserResponse(user=request.user)

    async def SetUserRoles(
        self, request: pb.SetUserRolesRequest, context: Context
    ) -> pb.SetUserRolesResponse:
        return pb.SetUserRolesResponse(user=_user(request.user_id))


@dataclass
class Served:
    """The test server, a stub to it and a way to mint tokens."""

    service: GrpcService
    channel: grpc.aio.Channel
    stub: identity_service_pb2_grpc.IdentityServiceAsyncStub
    issuer: AccessTokenIssuer

    def bearer(self, *roles: str, user_id: str | None = None) -> tuple[tuple[str, str], ...]:
        token = self.issuer.issue(user_id or new_id(), roles or ["user"]).token
        return (("authorization", f"Bearer {token}"),)


async def _noop() -> None:
    pass


@pytest.fixture
async def served(
    keys: SigningKeys,
    issuer: AccessTokenIssuer,
    verifier: TokenVerifier,
    tracer_provider: TracerProvider,
) -> AsyncIterator[Served]:
    """A server with the auth guard; an undeclared CatalogueService is served too."""
    servicer = CallerEcho(keys)  # type: ignore[abstract]  # the rest stay UNIMPLEMENTED

    def register(server: grpc.aio.Server) -> None:
        identity_service_pb2_grpc.add_IdentityServiceServicer_to_server(servicer, server)
        catalogue_service_pb2_grpc.add_CatalogueServiceServicer_to_server(
            catalogue_service_pb2_grpc.CatalogueServiceServicer(),  # type: ignore[abstract]
            server,
        )

    spec = ServiceSpec(
        domain=DOMAIN,
        service_names=[IDENTITY.full_name],
        register=register,
        probe=_noop,
        guards=[AuthGuard(verifier, [POLICIES], domain=DOMAIN)],
    )
    settings = ServiceSettings(host="127.0.0.1", port=0)
    service = await start_grpc_service(
        spec, settings, env_prefix="TEST_", tracer_provider=tracer_provider
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    try:
        stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
        yield Served(service, channel, stub, issuer)
    finally:
        await channel.close()
        await service.stop(0)


async def _refused(call: Any) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = rich_error(caught.value)
    assert error.info.domain == DOMAIN
    return error.code, error.info.reason, caught.value.details() or ""


async def test_a_valid_token_reaches_the_handler_as_the_caller(served: Served) -> None:
    user_id = new_id()
    issued = served.issuer.issue(user_id, ["user", "merchant"])
    metadata = (("authorization", f"bearer {issued.token}"),)  # the scheme is case-insensitive
    reply = await served.stub.GetUser(pb.GetUserRequest(user_id=user_id), metadata=metadata)
    assert reply.user == _user(user_id, issued.token_id, frozenset({"user", "merchant"}))


async def test_no_token_on_an_authenticated_rpc_is_unauthenticated(served: Served) -> None:
    code, reason, message = await _refused(served.stub.GetUser(pb.GetUserRequest()))
    assert (code, reason, message) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
        "missing bearer token",
    )


@pytest.mark.parametrize(
    "metadata",
    [
        (("authorization", "Token abc"),),
        (("authorization", "Bearer"),),
        (("authorization", "Bearer a b"),),
        (("authorization", "Basic dXNlcjpwYXNzd29yZA=="),),
        (("authorization", "Bearer not-a-jwt"),),
        (("authorization", "Bearer a"), ("authorization", "Bearer b")),
    ],
    ids=["other-scheme", "no-token", "two-tokens", "basic", "garbage", "two-headers"],
)
async def test_a_malformed_authorization_header_is_unauthenticated(
    served: Served, metadata: tuple[tuple[str, str], ...]
) -> None:
    call = served.stub.GetUser(pb.GetUserRequest(), metadata=metadata)
    code, reason, _ = await _refused(call)
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


async def test_an_expired_token_is_unauthenticated(served: Served, clock: FakeClock) -> None:
    metadata = served.bearer()
    clock.advance(TTL * 2)
    call = served.stub.GetUser(pb.GetUserRequest(), metadata=metadata)
    assert await _refused(call) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
        "token expired",
    )


async def test_a_missing_role_is_permission_denied(served: Served) -> None:
    request = pb.SetUserRolesRequest(
        user_id=new_id(), roles=[pb.ROLE_MERCHANT], request_id=new_id()
    )
    call = served.stub.SetUserRoles(request, metadata=served.bearer("user", "merchant"))
    code, reason, _ = await _refused(call)
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")
    reply = await served.stub.SetUserRoles(request, metadata=served.bearer("admin"))
    assert reply.user.user_id == request.user_id


async def test_handlers_keep_users_to_their_own_data(served: Served) -> None:
    me = new_id()
    mine = pb.UpdateUserRequest(user=pb.User(user_id=me), request_id=new_id())
    theirs = pb.UpdateUserRequest(user=pb.User(user_id=new_id()), request_id=new_id())
    assert (await served.stub.UpdateUser(mine, metadata=served.bearer(user_id=me))).user.user_id
    call = served.stub.UpdateUser(theirs, metadata=served.bearer(user_id=me))
    code, reason, _ = await _refused(call)
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")
    await served.stub.UpdateUser(theirs, metadata=served.bearer("admin"))


async def test_a_public_rpc_takes_no_token_but_checks_one_that_is_sent(served: Served) -> None:
    call = served.stub.GetJwks(pb.GetJwksRequest())
    assert len((await call).keys) == 1
    assert (await call.trailing_metadata())["caller"] == "-"
    user_id = new_id()
    call = served.stub.GetJwks(pb.GetJwksRequest(), metadata=served.bearer(user_id=user_id))
    await call
    assert (await call.trailing_metadata())["caller"] == user_id
    bad = (("authorization", "Bearer not-a-jwt"),)
    code, reason, _ = await _refused(served.stub.GetJwks(pb.GetJwksRequest(), metadata=bad))
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


async def test_a_token_ignored_rpc_ignores_even_a_broken_header(served: Served) -> None:
    bad = (("authorization", "Bearer not-a-jwt"),)
    login = pb.LoginRequest(email="ada@example.com", password="correct horse")
    reply = await served.stub.Login(login, metadata=bad)
    assert reply.user.user_id == ""
    reply = await served.stub.Login(login, metadata=served.bearer())
    assert reply.user.user_id == ""


async def test_unimplemented_rpcs_still_answer_unimplemented(served: Served) -> None:
    request = pb.RegisterUserRequest(
        email="ada@example.com",
        password="correct horse",
        display_name="Ada",
        request_id=new_id(),
    )
    code, reason, _ = await _refused(served.stub.RegisterUser(request))
    assert (code, reason) == (grpc.StatusCode.UNIMPLEMENTED, "NOT_IMPLEMENTED")


async def test_an_rpc_without_a_declared_policy_is_refused(served: Served) -> None:
    stub = catalogue_service_pb2_grpc.CatalogueServiceStub(served.channel)
    call = stub.ListCategories(
        catalogue_service_pb2.ListCategoriesRequest(), metadata=served.bearer("admin")
    )
    code, reason, _ = await _refused(call)
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")


async def test_health_is_open_whatever_the_header_says(served: Served) -> None:
    assert await check_health(served.channel) == health_pb2.HealthCheckResponse.SERVING
    check = served.channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    reply = await check(
        health_pb2.HealthCheckRequest(), metadata=(("authorization", "Bearer junk"),)
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_other_services_verify_with_keys_fetched_over_grpc(
    served: Served, keys: SigningKeys, clock: FakeClock
) -> None:
    fetch = grpc_jwks_fetcher(served.channel)
    assert await fetch() == keys.jwks()
    jwks = JwksCache(fetch, clock=clock)
    wallet_side = TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    issued = served.issuer.issue(new_id(), ["user"])
    assert (await wallet_side.verify(issued.token)).token_id == issued.token_id


def test_every_rpc_needs_a_declared_policy() -> None:
    partial = dict(POLICIES.methods)
    del partial["GetUser"]
    with pytest.raises(PolicyError, match=r"no policy for \['GetUser'\]"):
        ServicePolicies(IDENTITY, partial)
    with pytest.raises(PolicyError, match=r"no such RPCs \['Explode'\]"):
        ServicePolicies(IDENTITY, {**POLICIES.methods, "Explode": PUBLIC})


def test_wiring_mistakes_fail_at_construction(verifier: TokenVerifier) -> None:
    with pytest.raises(PolicyError, match="unknown roles"):
        authenticated("root")
    with pytest.raises(PolicyError, match="declared twice"):
        AuthGuard(verifier, [POLICIES, POLICIES], domain=DOMAIN)
    health = health_pb2.DESCRIPTOR.services_by_name["Health"]
    every = {"Check": PUBLIC, "List": PUBLIC, "Watch": PUBLIC}
    streaming = ServicePolicies(health, every)  # type: ignore[arg-type]  # upb stub type
    with pytest.raises(PolicyError, match="streaming"):
        AuthGuard(verifier, [streaming], domain=DOMAIN)


def test_mini_app_policies_name_a_scope_and_stand_alone() -> None:
    assert mini_app("wallet.pay").access is Access.MINI_APP
    assert user_or_mini_app("wallet.pay").access is Access.AUTHENTICATED
    with pytest.raises(PolicyError, match="names the scope"):
        Policy(Access.MINI_APP)
    with pytest.raises(PolicyError, match="only by authenticated RPCs"):
        Policy(Access.PUBLIC, mini_app_scope="wallet.pay")
    with pytest.raises(PolicyError, match="cannot be required together"):
        Policy(Access.AUTHENTICATED, frozenset({"admin"}), mini_app_scope="wallet.pay")
