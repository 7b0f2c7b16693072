"""Turn `ServiceError`s into `google.rpc.Status` with ErrorInfo, BadRequest and RetryInfo.

One handler guard does it for every RPC, so servicers and domain code just raise.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.runtime.errors import (
    InvalidArgument,
    ResourceExhausted,
    ServiceError,
    Unimplemented,
)
from services.runtime.telemetry import attach_caller_trace, detach_caller_trace

__all__ = ["ErrorGuard", "to_grpc_status"]

_log = logging.getLogger(__name__)

# The handler's behaviour: a coroutine function, or the generated base class's plain
# function that raises NotImplementedError.
_Behavior = Callable[[Any, Any], Any]


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_grpc_status(error: ServiceError, domain: str) -> grpc.Status:
    """The rich status for `error`: its code, message and details for `domain`."""
    status = status_pb2.Status(
        code=getattr(code_pb2, error.code.value),
        message=error.message,
    )
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=error.domain or domain, metadata=error.metadata
    )
    status.details.append(_pack(info))
    if isinstance(error, InvalidArgument):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description, reason=v.reason
                )
                for v in error.violations
            ]
        )
        status.details.append(_pack(bad_request))
    if isinstance(error, ResourceExhausted):
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(max(0, round(error.retry_after_seconds * 1000)))
        status.details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return rpc_status.to_status(status)


class ErrorGuard:
    """Answers `ServiceError` with its rich status and anything unexpected with INTERNAL.

    An unexpected exception is logged with its traceback here and never reaches the
    client beyond a generic message, so no internals leak. A `HandlerGuard`: it wraps
    each unary handler once, at registration (see `GuardedServer`).
    """

    def __init__(self, domain: str, *, carry_trace_context: bool = False) -> None:
        """`carry_trace_context` when no tracing interceptor records spans (see telemetry)."""
        self._domain = domain
        self._carry_trace = carry_trace_context

    def guard(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """`handler` with its errors mapped; streaming handlers are left as they are."""
        if handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._guard(handler.unary_unary, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _guard(self, inner: _Behavior, method: str) -> _Behavior:
        domain = self._domain
        carry_trace = self._carry_trace

        async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            trace = attach_caller_trace(context.invocation_metadata()) if carry_trace else None
            try:
                result = inner(request, context)
                return await result if inspect.isawaitable(result) else result
            except grpc.aio.AbortError:
                raise
            except ServiceError as error:
                await context.abort_with_status(to_grpc_status(error, domain))
            except NotImplementedError:
                # The generated base servicer raises this for RPCs the contract defines
                # but this release does not serve yet.
                missing = Unimplemented("NOT_IMPLEMENTED", f"{method} is not implemented yet")
                await context.abort_with_status(to_grpc_status(missing, domain))
            except Exception:
                _log.exception("unhandled error in %s", method)
                internal = ServiceError("INTERNAL", "internal error")
                await context.abort_with_status(to_grpc_status(internal, domain))
            finally:
                if trace is not None:
                    detach_caller_trace(trace)
            raise AssertionError("abort_with_status returned")  # pragma: no cover

        return behavior
