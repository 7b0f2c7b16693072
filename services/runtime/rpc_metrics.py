"""RED metrics of every unary RPC a server answers: rate, errors by status, duration.

A `HandlerGuard` (see `GuardedServer`): `start_grpc_service` puts it outermost, so it
sees the status a call really ends with, including those `ErrorGuard` and `AuthGuard`
map errors to. The names follow the Prometheus gRPC conventions (`grpc_server_*`).

Per call it costs a few additions on children bound once per method, at registration,
which is when the guard runs (see `services.runtime.hot_metrics` for why they are not
prometheus-client's own). Streaming RPCs (health's Watch, reflection) are left
unmeasured: long-lived by design, their duration says nothing about latency.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from services.runtime.exemplars import trace_exemplar
from services.runtime.hot_metrics import Count, HotCounter, HotGauge, HotHistogram
from services.runtime.metrics import Metrics

__all__ = ["RpcMetrics"]

if TYPE_CHECKING:
    _Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
_Behavior = Callable[[Any, Any], Any]
_Context = grpc.aio.ServicerContext[Any, Any]


def _split(method: str) -> tuple[str, str]:
    """`/package.Service/Method` → (`package.Service`, `Method`)."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


def _ending(error: BaseException, context: _Context) -> str:
    """The status code name a call that raised `error` ends with."""
    if isinstance(error, grpc.aio.AbortError):
        code = context.code()
        return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
    if isinstance(error, asyncio.CancelledError):
        # gRPC cancels the handler when the client goes away or the deadline passes.
        remaining = context.time_remaining()
        return "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
    return "UNKNOWN"  # what grpc.aio answers an exception no guard mapped


class _Handled:
    """`grpc_server_handled_total` of one method: OK bound at once, other codes on
    their first occurrence."""

    __slots__ = ("_family", "_labels", "ok")

    def __init__(self, family: HotCounter, service: str, name: str) -> None:
        self._family = family
        self._labels = (service, name)
        self.ok = family.labels(service, name, "OK")

    def code(self, code: str) -> Count:
        return self._family.labels(*self._labels, code)


class RpcMetrics:
    """Counts and times each unary call by service, method and final status code."""

    def __init__(self, metrics: Metrics) -> None:
        self._enabled = metrics.enabled
        labels = ("grpc_service", "grpc_method")
        self._started = HotCounter(
            metrics, "grpc_server_started_total", "RPCs whose handler started.", labels
        )
        self._handled = HotCounter(
            metrics,
            "grpc_server_handled_total",
            "RPCs completed, by final status code.",
            (*labels, "grpc_code"),
        )
        self._seconds = HotHistogram(
            metrics,
            "grpc_server_handling_seconds",
            "Time from the handler's start to its end, whatever the status.",
            labels,
        )
        self._in_flight = HotGauge(
            metrics, "grpc_server_in_flight", "RPCs whose handler is running.", labels
        )

    def guard(self, method: str, handler: _Handler) -> _Handler:
        """`handler`, measured; streaming handlers are left as they are."""
        inner: _Behavior | None = handler.unary_unary
        if inner is None or not self._enabled:
            return handler
        service, name = _split(method)
        started = self._started.labels(service, name)
        handled = _Handled(self._handled, service, name)
        seconds = self._seconds.labels(service, name)
        in_flight = self._in_flight.labels(service, name)
        clock = time.perf_counter

        async def behavior(request: Any, context: _Context) -> Any:
            started.value += 1
            in_flight.value += 1
            start = clock()
            try:
                result = inner(request, context)
                if inspect.isawaitable(result):
                    result = await result
            except BaseException as error:
                handled.code(_ending(error, context)).value += 1
                raise
            else:
                handled.ok.value += 1
                return result
            finally:
                in_flight.value -= 1
                seconds.observe(clock() - start, trace_exemplar())

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
