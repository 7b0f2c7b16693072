"""Tracer providers chosen by the standard `OTEL_*` environment variables.

`OTEL_TRACES_EXPORTER` names exporters by their registered entry points (`otlp`,
`console`, …). Unset or `none` gives a provider with no exporter, because a laptop
running the stack has no collector to send spans to; code that would build spans only
to drop them asks `exports_spans` first. Apart from `services.runtime.telemetry` (the
gRPC side), so the outbox relay's child process can trace without importing gRPC.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from typing import Any

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

__all__ = ["ServiceTracerProvider", "exports_spans", "tracer_provider_from_env"]


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
