"""A typed grpc.health.v1 client, for launchers, benchmarks and readiness checks.

The published type stubs declare `HealthStub` without its methods, so callers would
otherwise reach for untyped attributes.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2

__all__ = ["check_health"]

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
