"""Every failure the BFF answers becomes an RFC 9457 problem document.

Upstream gRPC errors keep their meaning: the status code maps to HTTP as grpc-gateway
maps it, and the `google.rpc.ErrorInfo` reason, domain and metadata, the BadRequest
field violations and the RetryInfo delay (as `Retry-After`) are passed on. A failure that
carries no ErrorInfo did not come from a service's own error handling (a connection
refused, a deadline) and is reported by its status alone: gRPC's own messages name
internal addresses, so they never reach the client. Nothing is ever swallowed into a
default answer.

A few reasons mean something more precise over HTTP than their gRPC status: a reused
`Idempotency-Key` is 422 (draft-ietf-httpapi-idempotency-key-header), not the 400 of
FAILED_PRECONDITION.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

from services.runtime.errors import (
    InvalidArgument,
    ResourceExhausted,
    ServiceError,
    Unauthenticated,
)
from services.runtime.status_details import StatusDetails

__all__ = [
    "BFF_DOMAIN",
    "HTTP_STATUS_BY_GRPC",
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "ProblemResponse",
    "Violation",
    "http_status",
    "install_problem_handlers",
    "problem_from_rpc_error",
    "problem_from_service_error",
    "too_large_response",
]

_log = logging.getLogger(__name__)

BFF_DOMAIN = "bff.superapp"
PROBLEM_MEDIA_TYPE = "application/problem+json"

HTTP_STATUS_BY_GRPC: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
"""gRPC status → HTTP status, as grpc-gateway's `HTTPStatusFromCode` maps them."""

# What the client is told when the upstream's own words may not be passed on.
_GENERIC_DETAIL: Mapping[int, str] = {
    499: "the request was cancelled",
    500: "internal error",
    501: "this operation is not available yet",
    503: "a service this request needs is unavailable; try again shortly",
    504: "a service this request needs did not answer in time; try again",
}

# Upstream request fields whose HTTP spelling differs: the request id travels in a
# header, and resource bodies are sent without the wrapper message the RPC has.
_FIELD_ALIASES: Mapping[str, str] = {
    "request_id": "Idempotency-Key",
    "bundle": "body",  # an upload's body is the bundle
    "min_price.amount_minor": "min_price_minor",
    "max_price.amount_minor": "max_price_minor",
    "min_price.currency_code": "currency_code",
    "max_price.currency_code": "currency_code",
}
_WRAPPERS = ("product.", "user.", "category.", "mini_app.")
# Errors the HTTP layer raises before a route runs.
_HTTP_REASONS: Mapping[int, str] = {
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


@dataclass(frozen=True)
class _ReasonOverride:
    status: int
    detail: str


# Upstream reasons whose HTTP status is not their gRPC code's, with words for HTTP clients.
_BY_REASON: Mapping[str, _ReasonOverride] = {
    "IDEMPOTENCY_KEY_REUSED": _ReasonOverride(
        422, "this Idempotency-Key was already used with a different request"
    ),
}
# Upstream metadata that must not reach the client: an upstream request id may be one the
# BFF derived from the client's key (checkout's per-step ids), an internal name.
_INTERNAL_METADATA = frozenset({"request_id"})


class Violation(BaseModel):
    """One invalid field of the request."""

    field: str = Field(description="The JSON body path, query or path parameter or header.")
    description: str = Field(description="What is wrong with it.")
    reason: str = Field(description="UPPER_SNAKE machine-readable cause, e.g. REQUIRED.")


class Problem(BaseModel):
    """An RFC 9457 problem document; `reason` is the stable thing to branch on."""

    type: str = Field(description="A URI naming the problem type (derived from `reason`).")
    title: str = Field(description="The HTTP status phrase.")
    status: int = Field(description="The HTTP status code, repeated.")
    detail: str = Field(description="A human-readable explanation; never parsed.")
    reason: str = Field(description="The upstream `google.rpc.ErrorInfo.reason`, UPPER_SNAKE.")
    domain: str = Field(description="Who decided: `<service>.superapp` (bff, wallet, ...).")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="Facts about the problem, e.g. `available_minor`."
    )
    violations: list[Violation] = Field(
        default_factory=list, description="For invalid input: each offending field."
    )


class ProblemResponse(JSONResponse):
    """A JSON response with the problem+json media type."""

    media_type = PROBLEM_MEDIA_TYPE


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status for a gRPC status code."""
    return HTTP_STATUS_BY_GRPC.get(code, 500)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Client Closed Request" if status == 499 else "Error"


def _problem(
    status: int,
    reason: str,
    domain: str,
    detail: str,
    *,
    metadata: Mapping[str, str] | None = None,
    violations: Sequence[Violation] = (),
) -> Problem:
    return Problem(
        type=f"urn:superapp:problem:{reason.lower().replace('_', '-')}",
        title=_phrase(status),
        status=status,
        detail=detail,
        reason=reason,
        domain=domain,
        metadata=dict(metadata or {}),
        violations=list(violations),
    )


def _http_field(path: str) -> str:
    """The name a client knows for the upstream request field `path`."""
    alias = _FIELD_ALIASES.get(path)
    if alias is not None:
        return alias
    for wrapper in _WRAPPERS:
        if path.startswith(wrapper):
            return path.removeprefix(wrapper)
    return path


def _response(problem: Problem, headers: Mapping[str, str] | None = None) -> ProblemResponse:
    return ProblemResponse(
        problem.model_dump(mode="json"), status_code=problem.status, headers=headers
    )


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def problem_from_rpc_error(error: grpc.aio.AioRpcError) -> tuple[Problem, dict[str, str]]:
    """The problem document and extra headers for a failed upstream call."""
    status = http_status(error.code())
    details = StatusDetails.of(error)
    info = details.error_info
    violations = [
        Violation(field=_http_field(v.field), description=v.description, reason=v.reason)
        for v in details.violations
    ]
    headers: dict[str, str] = {}
    if details.retry_after_seconds is not None:
        headers.update(_retry_after(details.retry_after_seconds))
    if info is None or not info.reason:
        # Not an answer of a service's error handling: the transport's own words could
        # name internal addresses, so only the status is reported.
        reason = error.code().name
        problem = _problem(status, reason, BFF_DOMAIN, _GENERIC_DETAIL.get(status, reason))
        return problem, headers
    override = _BY_REASON.get(info.reason)
    detail_text: str | None = None
    if override is not None:
        status, detail_text = override.status, override.detail
    elif status >= 500:
        detail_text = _GENERIC_DETAIL.get(status)
    problem = _problem(
        status,
        info.reason,
        info.domain,
        detail_text or error.details() or info.reason,
        metadata={k: v for k, v in info.metadata.items() if k not in _INTERNAL_METADATA},
        violations=violations,
    )
    return problem, headers


def problem_from_service_error(
    error: ServiceError, domain: str = BFF_DOMAIN
) -> tuple[Problem, dict[str, str]]:
    """The problem document and extra headers for an error the BFF raised itself."""
    status = http_status(grpc.StatusCode[error.code.value])
    violations = [
        Violation(field=v.field, description=v.description, reason=v.reason)
        for v in (error.violations if isinstance(error, InvalidArgument) else ())
    ]
    headers: dict[str, str] = {}
    if isinstance(error, ResourceExhausted):
        headers.update(_retry_after(error.retry_after_seconds))
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    detail = _GENERIC_DETAIL.get(status) if status >= 500 else None
    problem = _problem(
        status,
        error.reason,
        domain,
        detail or error.message,
        metadata=error.metadata,
        violations=violations,
    )
    return problem, headers


def _validation_field(location: Sequence[int | str]) -> str:
    where, *path = location or ("body",)
    if where == "header" and path:
        return str(path[0]).title()
    return ".".join(str(part) for part in path) or str(where)


def _violation(error: Mapping[str, Any]) -> Violation:
    if error.get("type") == "json_invalid":
        # Located at ("body", <character offset>): it is the body that is wrong.
        offset = error.get("loc", ("body", 0))[-1]
        cause = error.get("ctx", {}).get("error") or "cannot be parsed"
        return Violation(
            field="body",
            description=f"is not valid JSON ({cause} at character {offset})",
            reason="MALFORMED_JSON",
        )
    return Violation(
        field=_validation_field(error.get("loc", ())),
        description=str(error.get("msg", "is invalid")),
        reason=str(error.get("type", "invalid")).upper().replace(".", "_"),
    )


async def _on_rpc_error(_request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, grpc.aio.AioRpcError)
    problem, headers = problem_from_rpc_error(error)
    if problem.status >= 500:
        _log.warning(
            "upstream call failed: %s %s", error.code().name, problem.reason, exc_info=False
        )
    if problem.reason == "UNAUTHENTICATED":  # not, say, a sign-in's wrong password
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return _response(problem, headers)


async def _on_service_error(_request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, ServiceError)
    problem, headers = problem_from_service_error(error)
    return _response(problem, headers)


async def _on_invalid_request(_request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, RequestValidationError)
    violations = [_violation(item) for item in error.errors()]
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
    problem = _problem(400, "INVALID_ARGUMENT", BFF_DOMAIN, summary, violations=violations)
    return _response(problem)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110 §15.5.6).

    Starlette's 405 names only the methods of the first route whose path matched, and
    FastAPI has one route per operation: `DELETE /v1/me` would allow only GET.
    """
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(route.methods or ())
    return ", ".join(sorted(methods))


async def _on_http_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, HTTPException)
    status = error.status_code
    max_bytes = getattr(error, "max_bytes", None)
    if status == 413 and isinstance(max_bytes, int):
        return too_large_response(max_bytes)
    detail = error.detail if isinstance(error.detail, str) else _phrase(status)
    reason = _HTTP_REASONS.get(status, "HTTP_ERROR")
    headers = dict(error.headers or {})
    if status == 405:
        headers["Allow"] = _allowed_methods(request)
    return _response(_problem(status, reason, BFF_DOMAIN, detail), headers)


def too_large_response(max_bytes: int) -> ProblemResponse:
    """413 for a request body above `max_bytes`."""
    problem = _problem(
        413,
        "REQUEST_TOO_LARGE",
        BFF_DOMAIN,
        f"the request body must be at most {max_bytes} bytes",
        metadata={"max_bytes": str(max_bytes)},
    )
    return _response(problem)


async def _on_unexpected(_request: Request, error: Exception) -> ProblemResponse:
    _log.error("unhandled error", exc_info=error)
    return _response(_problem(500, "INTERNAL", BFF_DOMAIN, _GENERIC_DETAIL[500]))


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every kind of failure with problem+json."""
    app.add_exception_handler(grpc.aio.AioRpcError, _on_rpc_error)
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(RequestValidationError, _on_invalid_request)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
