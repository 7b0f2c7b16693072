"""Reading a failed call's `google.rpc.Status` details: the other side of `rich_status`.

Callers of our services (the BFF, one service calling another) act on the ErrorInfo
reason, show BadRequest's field violations and honour RetryInfo; this is where those
three are taken out of the `grpc-status-details-bin` trailer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

__all__ = ["StatusDetails"]


@dataclass(frozen=True, slots=True)
class StatusDetails:
    """The details a failed call carried; empty where it carried none."""

    error_info: error_details_pb2.ErrorInfo | None = None
    violations: list[error_details_pb2.BadRequest.FieldViolation] = field(default_factory=list)
    retry_after_seconds: float | None = None

    @classmethod
    def of(cls, error: grpc.aio.AioRpcError) -> StatusDetails:
        """The details of `error`; none when its status and details do not match."""
        try:
            status = rpc_status.from_call(error)  # type: ignore[arg-type]  # AioRpcError is a Call
        except ValueError:
            return cls()
        info: error_details_pb2.ErrorInfo | None = None
        violations: list[error_details_pb2.BadRequest.FieldViolation] = []
        retry: float | None = None
        for detail in status.details if status is not None else ():
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = list(bad.field_violations)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                delay = error_details_pb2.RetryInfo()
                detail.Unpack(delay)
                retry = delay.retry_delay.ToTimedelta().total_seconds()
        return cls(info, violations, retry)
