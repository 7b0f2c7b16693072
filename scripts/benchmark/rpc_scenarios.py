"""gRPC scenarios: the bare grpc.aio echo ceiling and our services' RPCs beside it."""

from __future__ import annotations

from functools import partial

import grpc
from grpc_health.v1 import health_pb2
from superapp.catalogue.v1 import catalogue_service_pb2, catalogue_service_pb2_grpc
from superapp.identity.v1 import identity_service_pb2

from scripts.benchmark.echo_server import ECHO_METHOD
from scripts.benchmark.environment import Environment
from scripts.benchmark.scenario import Call, ClosedLoop, Scenario
from scripts.benchmark.server_process import health_check_method

__all__ = ["GRPC_ECHO", "rpc_scenarios"]

GRPC_ECHO = "grpc.echo"
# About the size of a small real request, so the ceiling is not an empty frame.
_ECHO_PAYLOAD = b"x" * 32


async def _echo(env: Environment) -> ClosedLoop:
    address = await env.echo_server()
    calls: list[Call] = []
    for channel in await env.channels(address):
        # Registered like the generated stubs' methods (the type stubs lack the argument).
        echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            ECHO_METHOD, _registered_method=True
        )  # type: ignore[call-arg]
        calls.append(partial(echo, _ECHO_PAYLOAD, timeout=env.call_timeout))
    return ClosedLoop(calls, server=env.processes(address))


async def _health_check(env: Environment) -> ClosedLoop:
    address = await env.service("identity")
    request = health_pb2.HealthCheckRequest(
        service=identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name
    )
    calls: list[Call] = []
    for channel in await env.channels(address):
        check = health_check_method(channel)
        calls.append(partial(check, request, timeout=env.call_timeout))
    return ClosedLoop(calls, server=env.processes(address))


async def _list_categories(env: Environment) -> ClosedLoop:
    address = await env.service("catalogue")
    request = catalogue_service_pb2.ListCategoriesRequest()
    calls: list[Call] = []
    for channel in await env.channels(address):
        stub = catalogue_service_pb2_grpc.CatalogueServiceStub(channel)
        calls.append(partial(stub.ListCategories, request, timeout=env.call_timeout))
    return ClosedLoop(calls, server=env.processes(address))


def rpc_scenarios() -> list[Scenario]:
    """The gRPC scenarios, ceiling first."""
    return [
        Scenario(GRPC_ECHO, _echo),
        Scenario("health.check", _health_check, ceiling=GRPC_ECHO),
        Scenario("catalogue.ListCategories", _list_categories, ceiling=GRPC_ECHO),
    ]
