"""RED metrics of every HTTP request the BFF answers, by route template.

ASGI middleware, outermost of the app's own: it sees the status the client gets,
including the problem documents of the error handlers, and a request that fails
without an answer counts as the 500 the server then sends. The route label is the
template the router matched (`/v1/products/{product_id}`), read from the scope after
routing, never the raw path: ids in paths would make one series per resource.
A path no route matches counts as `other`.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.runtime.exemplars import trace_exemplar
from services.runtime.hot_metrics import HotCounter, HotGauge, HotHistogram
from services.runtime.metrics import Metrics

__all__ = ["UNMATCHED_ROUTE", "HttpMetrics", "MeasureRequests"]

UNMATCHED_ROUTE = "other"
"""The route label of a request no route matched (a 404 of the router itself)."""

# Anything else a client sends as a method is counted as "other": labels stay bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class HttpMetrics:
    """The HTTP RED families in a process's metrics, made once per app (Starlette may
    build its middleware stack more than once)."""

    def __init__(self, metrics: Metrics) -> None:
        self.requests = HotCounter(
            metrics,
            "http_server_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
        )
        self.seconds = HotHistogram(
            metrics,
            "http_server_request_duration_seconds",
            "Time from a request's arrival to the end of its response.",
            ("route", "method"),
        )
        self.in_flight = HotGauge(
            metrics, "http_server_in_flight_requests", "HTTP requests being answered.", ()
        ).labels()


class MeasureRequests:
    """ASGI middleware: counts and times each HTTP request into `http_metrics`."""

    def __init__(self, app: ASGIApp, http_metrics: HttpMetrics) -> None:
        self._app = app
        self._metrics = http_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500  # unless a response starts: what the server answers a failure with

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        # Taken now: OpenTelemetry's middleware ends the request's span as the last
        # byte of the response goes out, before this one's `finally`.
        exemplar = trace_exemplar()
        families = self._metrics
        in_flight = families.in_flight
        in_flight.value += 1
        start = time.perf_counter()
        try:
            await self._app(scope, receive, send_noting_status)
        finally:
            elapsed = time.perf_counter() - start
            in_flight.value -= 1
            route = _route(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            families.requests.labels(route, method, str(status)).value += 1
            families.seconds.labels(route, method).observe(elapsed, exemplar)
