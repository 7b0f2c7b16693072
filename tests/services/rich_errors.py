"""Read the google.rpc.Status details a service attached to a failed call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class RichError:
    """The status code and unpacked details of a failed RPC."""

    code: grpc.StatusCode
    info: error_details_pb2.ErrorInfo
    violations: dict[str, str]
    retry_delay: float | None = None
    """RetryInfo's `retry_delay` in seconds, if the details carry one."""


def rich_error(error: grpc.aio.AioRpcError) -> RichError:
    """Unpack ErrorInfo (required), BadRequest and RetryInfo (if present) from `error`."""
    status = rpc_status.from_call(error)
    assert status is not None, f"no google.rpc.Status details on {error.code()}"
    info = error_details_pb2.ErrorInfo()
    violations: dict[str, str] = {}
    retry_delay = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = {v.field: v.reason for v in bad.field_violations}
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_delay = retry.retry_delay.ToTimedelta().total_seconds()
    assert info.reason, "ErrorInfo missing from the status details"
    return RichError(error.code(), info, violations, retry_delay)


async def failure(call: Any) -> RichError:
    """The rich error of a call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return rich_error(caught.value)
