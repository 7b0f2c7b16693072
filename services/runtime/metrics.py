"""One process's Prometheus metrics: its own registry, served on its own port.

Each process (a service replica, a BFF worker) owns one `Metrics`. Nothing registers in
prometheus-client's global registry: a test runs several services in one process, and
each must count only its own calls. Families are declared where they are measured (the
gRPC guard, the event bus, the ledger…) through `counter`/`gauge`/`histogram`, which put
them in this registry. Prometheus scrapes every replica and sums across them, so no
family here may carry a per-process label beyond what the scrape adds (`instance`).

The endpoint speaks the Prometheus text format and OpenMetrics (chosen by the scraper's
Accept header); exemplars, which carry trace ids, appear in OpenMetrics only.

`<PREFIX>_METRICS_ENABLED=false` turns recording off: every family handed out then
records nothing (the endpoint, if served, shows build and process metrics only). It is
what the bench compares against to price the metrics, and an operator's way out should
they ever cost too much.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any, Self
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

__all__ = ["BUILD_COMMIT_VARIABLE", "LATENCY_BUCKETS", "Metrics"]

BUILD_COMMIT_VARIABLE = "SUPERAPP_BUILD_COMMIT"
"""Where a build records its commit (the Dockerfile's build argument); unset: unknown."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds, for calls whose SLO is in the tens to hundreds of milliseconds: fine below
the SLO thresholds (25, 100, 250 ms) so burn-rate rules can use them as `le` bounds."""


def _version() -> str:
    try:
        return metadata.version("superapp-platform")
    except metadata.PackageNotFoundError:
        return "unknown"


class _SilentCounter(Counter):
    """A counter that records nothing, registered nowhere."""

    def labels(self, *values: Any, **labels: Any) -> Self:
        return self

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        return None


class _SilentGauge(Gauge):
    """A gauge that records nothing, registered nowhere."""

    def labels(self, *values: Any, **labels: Any) -> Self:
        return self

    def inc(self, amount: float = 1) -> None:
        return None

    def dec(self, amount: float = 1) -> None:
        return None

    def set(self, value: float) -> None:
        return None

    def set_function(self, f: Callable[[], float]) -> None:
        return None


class _SilentHistogram(Histogram):
    """A histogram that records nothing, registered nowhere."""

    def labels(self, *values: Any, **labels: Any) -> Self:
        return self

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        return None


class Metrics:
    """The metrics of one process of `component` (`identity`, `bff`, …); with `enabled`
    false, families that record nothing."""

    def __init__(self, component: str, *, commit: str | None = None, enabled: bool = True) -> None:
        self.component = component
        self.enabled = enabled
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Info("superapp_build", "The running build.", registry=self.registry).info(
            {
                "component": component,
                "version": _version(),
                "commit": commit or os.environ.get(BUILD_COMMIT_VARIABLE, "unknown"),
            }
        )
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        """A counter family in this process's registry."""
        if not self.enabled:
            return _SilentCounter(name, documentation, labels, registry=None)
        return Counter(name, documentation, labels, registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        """A gauge family in this process's registry."""
        if not self.enabled:
            return _SilentGauge(name, documentation, labels, registry=None)
        return Gauge(name, documentation, labels, registry=self.registry)

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        """A histogram family in this process's registry."""
        if not self.enabled:
            return _SilentHistogram(name, documentation, labels, registry=None, buckets=buckets)
        return Histogram(name, documentation, labels, registry=self.registry, buckets=buckets)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """One sample's current value, 0 if it was never set (for tests and the bench)."""
        return self.registry.get_sample_value(name, labels or {}) or 0.0

    def serve(self, host: str, port: int) -> int:
        """Serve `/metrics` on `host:port` (0: a free port) from a thread; the bound port.

        A thread, not the event loop: a scrape must be answered even while the loop is
        busy, which is when it matters most.
        """
        if self._server is not None:
            raise RuntimeError("metrics are already served")
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._server.server_port)

    @property
    def port(self) -> int | None:
        """The port `/metrics` is served on, if it is."""
        return int(self._server.server_port) if self._server is not None else None

    async def close(self) -> None:
        """Stop serving (a no-op if not served)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
