"""How many calls a server is serving right now, for work that should yield under load.

A SQLite scan (a search, a listing page) costs the most when it is done on the event
loop's own thread while other calls wait: every one of them waits for it, and the
machine's other core idles. Alone, the same scan is cheapest done on the spot, because
the hop to a worker thread and back costs two cross-thread wake-ups (~0.2 ms here). So
the database asks `others()` before each scan (see `Database.scan`).

A call counts from the moment its handler starts until gRPC reports it finished (its
response sent, or it failed or was cancelled). Counting to the handler's return would
see nothing: a handler that never waits runs start to end while no other handler can
start, and the other calls are all in between, being read or answered.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

__all__ = ["CallsInFlight"]

if TYPE_CHECKING:
    _Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
# The handler's behaviour: a coroutine function, or a plain one.
_Behavior = Callable[[Any, Any], Any]


class CallsInFlight:
    """Counts this server's unary calls in flight. A `HandlerGuard` (see `GuardedServer`)."""

    def __init__(self) -> None:
        self._count = 0

    @property
    def count(self) -> int:
        """Calls whose handler has started and which gRPC has not finished yet."""
        return self._count

    def others(self) -> bool:
        """Whether, asked from inside a call, another call is in flight too."""
        return self._count > 1

    def guard(self, method: str, handler: _Handler) -> _Handler:
        """`handler`, counted while its call is in flight; streams are left alone."""
        inner: _Behavior | None = handler.unary_unary
        if inner is None:
            return handler
        # The stubs type the callback as a protocol class no method matches.
        on_finish: Any = self._finished

        async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            self._count += 1
            # Registered first: a handler that raises still ends its call.
            context.add_done_callback(on_finish)
            result = inner(request, context)
            return await result if inspect.isawaitable(result) else result

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _finished(self, _context: Any) -> None:
        self._count -= 1
