"""OpenTelemetry on the gRPC side: the server interceptor and the caller's trace context.

With no exporter configured (see `services.runtime.tracing`), the gRPC server
interceptor, which costs about a third of a cheap RPC's throughput, is left out, and
only the caller's trace context is carried into logs and NATS headers
(`attach_caller_trace`).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import Token

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters
from opentelemetry.sdk.trace import TracerProvider

__all__ = ["attach_caller_trace", "detach_caller_trace", "server_tracing_interceptor"]


_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})


def attach_caller_trace(
    metadata: Iterable[tuple[str, str | bytes]] | None,
) -> Token[Context] | None:
    """Make the caller's W3C trace context current, when tracing spans are not recorded.

    Returns the token for `detach_caller_trace`, or None when the caller sent none.
    A pair of calls rather than a context manager: it runs on every RPC.
    """
    carrier = {key: value for key, value in metadata or () if key in _TRACE_HEADERS}
    if not carrier:
        return None
    return otel_context.attach(propagate.extract(carrier))


def detach_caller_trace(token: Token[Context]) -> None:
    """Undo `attach_caller_trace`."""
    otel_context.detach(token)


def server_tracing_interceptor(provider: TracerProvider) -> grpc.aio.ServerInterceptor:
    """The OpenTelemetry grpc.aio server interceptor, with health checks left out."""
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]  # unannotated upstream
        tracer_provider=provider, filter_=filters.negate(filters.health_check())
    )
    return interceptor
