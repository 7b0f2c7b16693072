"""A typed grpc.health.v1 client, for launchers, benchmarks and readiness checks.

The published type stubs declare `HealthStub` without its methods, so callers would
otherwise reach for untyped attributes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2

__all__ = ["check_health", "wait_serving"]

_CHECK = "/grpc.health.v1.Health/Check"


async def check_health(
    channel: grpc.aio.Channel, service: str = "", *, deadline: float = 1.0
) -> int:
    """The serving status `service` reports ("" = the whole server)."""
    call = channel.unary_unary(
        _CHECK,
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    response: health_pb2.HealthCheckResponse = await call(
        health_pb2.HealthCheckRequest(service=service), timeout=deadline
    )
    status: int = response.status
    return status


async def wait_serving(
    channel: grpc.aio.Channel,
    service: str = "",
    *,
    poll_seconds: float = 0.1,
    on_state: Callable[[str], None] | None = None,
) -> None:
    """Until `service` reports SERVING; bound it with `asyncio.timeout`.

    `on_state` hears every other answer: a status name (`NOT_SERVING`) or why the check
    failed (`health check failed: UNAVAILABLE`).
    """
    serving = health_pb2.HealthCheckResponse.SERVING
    while True:
        try:
            status = await check_health(channel, service)
        except grpc.aio.AioRpcError as error:
            state = f"health check failed: {error.code().name}"
        else:
            if status == serving:
                return
            state = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
        if on_state is not None:
            on_state(state)
        await asyncio.sleep(poll_seconds)
