"""The error vocabulary of every service, free of gRPC so domain code can raise it.

Each error names a canonical status (as `Code`), an UPPER_SNAKE `reason` for
`google.rpc.ErrorInfo`, a human message and optional metadata. The transport layer
(`services.runtime.rich_status`) turns them into `google.rpc.Status` with details.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "AlreadyExists",
    "Code",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "ServiceError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
]


class Code(enum.Enum):
    """The canonical status codes our services return on purpose."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    ABORTED = "ABORTED"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid request field: its path (`amount.currency_code`) and what is wrong."""

    field: str
    description: str
    reason: str = "INVALID_FIELD"


class ServiceError(Exception):
    """Base of every error a service returns deliberately; anything else is INTERNAL."""

    code: Code = Code.INTERNAL

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        metadata: Mapping[str, str] | None = None,
        domain: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata = dict(metadata or {})
        self.domain = domain
        """The `ErrorInfo.domain` when another service decided (a relayed refusal);
        None: the answering service's own domain."""


class InvalidArgument(ServiceError):
    """The request is malformed; `violations` name each bad field."""

    code = Code.INVALID_ARGUMENT

    def __init__(
        self,
        violations: list[FieldViolation],
        *,
        reason: str = "INVALID_ARGUMENT",
        message: str | None = None,
    ) -> None:
        summary = message or "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(reason, summary)
        self.violations = list(violations)


class FailedPrecondition(ServiceError):
    """The request is well-formed but the system's state does not allow it."""

    code = Code.FAILED_PRECONDITION


class NotFound(ServiceError):
    """The named resource does not exist, or the caller may not know that it does."""

    code = Code.NOT_FOUND


class AlreadyExists(ServiceError):
    """The resource the request would create exists already."""

    code = Code.ALREADY_EXISTS


class PermissionDenied(ServiceError):
    """The caller is known but may not do this."""

    code = Code.PERMISSION_DENIED


class Unauthenticated(ServiceError):
    """The caller could not be identified: no, a malformed, or an expired credential."""

    code = Code.UNAUTHENTICATED


class ResourceExhausted(ServiceError):
    """A quota or throttle refused the request; `retry_after` says when to try again."""

    code = Code.RESOURCE_EXHAUSTED

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        retry_after_seconds: float,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(reason, message, metadata=metadata)
        self.retry_after_seconds = retry_after_seconds


class Unimplemented(ServiceError):
    """The contract defines the RPC but this release does not serve it yet."""

    code = Code.UNIMPLEMENTED


class Unavailable(ServiceError):
    """A dependency is away; the same request may succeed later."""

    code = Code.UNAVAILABLE
