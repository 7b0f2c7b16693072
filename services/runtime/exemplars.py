"""Exemplars: the trace a measured observation belongs to, for a histogram to point at.

Prometheus keeps one exemplar per bucket and shows it in OpenMetrics only; Grafana then
links a slow bucket straight to a trace of a call that landed in it.
"""

from __future__ import annotations

from opentelemetry import trace

__all__ = ["trace_exemplar"]


def trace_exemplar() -> dict[str, str] | None:
    """`{"trace_id": <32 hex>}` of the current span if it is recorded, else None: an
    exemplar must lead to a trace that was exported, and an unrecorded span's id (a
    caller's context carried without tracing) leads nowhere."""
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    return {"trace_id": format(span.get_span_context().trace_id, "032x")}
