"""OpenTelemetry wiring chosen by the standard `OTEL_*` environment variables.

`OTEL_TRACES_EXPORTER` names exporters by their registered entry points (`otlp`,
`console`, …). Unset or `none` gives a provider with no exporter: spans still carry
trace ids into logs and NATS headers, but nothing is shipped, because a laptop running
the stack has no collector to send them to.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

__all__ = ["server_tracing_interceptor", "tracer_provider_from_env"]


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


def tracer_provider_from_env(service_name: str) -> TracerProvider:
    """A tracer provider for `service_name` with the exporters the environment asks for."""
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    for exporter in _exporters(os.environ.get("OTEL_TRACES_EXPORTER", "none")):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def server_tracing_interceptor(provider: TracerProvider) -> grpc.aio.ServerInterceptor:
    """The OpenTelemetry grpc.aio server interceptor, with health checks left out."""
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]  # unannotated upstream
        tracer_provider=provider, filter_=filters.negate(filters.health_check())
    )
    return interceptor
