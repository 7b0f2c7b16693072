"""OpenTelemetry wiring chosen by the standard `OTEL_*` environment variables.

`OTEL_TRACES_EXPORTER` names exporters by their registered entry points (`otlp`,
`console`, …). Unset or `none` gives a provider with no exporter, because a laptop
running the stack has no collector to send spans to; then the gRPC server interceptor,
which costs about a third of a cheap RPC's throughput, is left out, and only the
caller's trace context is carried into logs and NATS headers (`attach_caller_trace`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextvars import Token
from importlib.metadata import entry_points
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

__all__ = [
    "ServiceTracerProvider",
    "attach_caller_trace",
    "detach_caller_trace",
    "exports_spans",
    "server_tracing_interceptor",
    "tracer_provider_from_env",
]


_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})


class ServiceTracerProvider(TracerProvider):
    """A tracer provider that knows whether any span processor (exporter) is attached."""

    exporting = False

    def add_span_processor(self, span_processor: Any) -> None:
        self.exporting = True
        super().add_span_processor(span_processor)


def exports_spans(provider: TracerProvider) -> bool:
    """Whether spans made with `provider` go anywhere (unknown providers: assume so)."""
    return provider.exporting if isinstance(provider, ServiceTracerProvider) else True


def _exporters(names: str) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    for name in (part.strip() for part in names.split(",")):
        if not name or name == "none":
            continue
        found = entry_points(group="opentelemetry_traces_exporter", name=name)
        if not found:
            raise ValueError(f"OTEL_TRACES_EXPORTER: no exporter named {name!r} is installed")
        exporter_class: Any = next(iter(found)).load()
        exporters.append(exporter_class())
    return exporters


def tracer_provider_from_env(service_name: str) -> ServiceTracerProvider:
    """A tracer provider for `service_name` with the exporters the environment asks for."""
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = ServiceTracerProvider(resource=resource)
    for exporter in _exporters(os.environ.get("OTEL_TRACES_EXPORTER", "none")):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


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
