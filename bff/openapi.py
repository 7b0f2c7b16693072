"""The served OpenAPI document: every error response documented as problem+json.

Routes list the statuses they can answer with `errors(...)`; the generator puts those
under `application/problem+json` (FastAPI would file them under the route's own media
type) and drops FastAPI's default 422, because invalid input is a 400 here, as an
INVALID_ARGUMENT from a service is. 422 means one thing: an `Idempotency-Key` reused for
a different request, documented on every operation that takes the header.

FastAPI marks every route that looks at the bearer token as requiring it; a route that
also answers without one (its token dependency is optional) gets the empty security
requirement as well, so generated clients do not demand a token there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

from bff.authentication import require_principal
from bff.dependencies import IDEMPOTENCY_KEY_HEADER
from bff.mini_app_callers import mini_app_caller
from bff.problems import PROBLEM_MEDIA_TYPE, Problem

__all__ = ["OPENAPI_PATH", "errors", "install_openapi"]

OPENAPI_PATH = "/openapi.json"

_EVERY_ROUTE = frozenset({400, 500, 503, 504})
_DESCRIPTIONS = {
    400: "Invalid input, or the state does not allow it (see `reason`).",
    401: "No, a malformed or an expired bearer token.",
    403: "The caller may not do this.",
    404: "No such resource, or one the caller may not see.",
    409: "It exists already, or a conflicting change won.",
    413: "The request body is too large.",
    415: "The request body is not of the media type the operation takes.",
    422: "This Idempotency-Key was already used with a different request "
    "(IDEMPOTENCY_KEY_REUSED); use a new key for a new request.",
    429: "Too many requests; wait for `Retry-After` seconds.",
    500: "Internal error.",
    501: "Not available in this release.",
    503: "A service this request needs is unavailable; retry later.",
    504: "A service this request needs did not answer in time.",
}
_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": "The authentication scheme: Bearer.",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "string"},
        }
    },
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: `statuses` plus those every route may answer."""
    return {
        status: {"model": Problem, "description": _DESCRIPTIONS[status]}
        for status in sorted(_EVERY_ROUTE | set(statuses))
    }


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    yield dependant.call
    for dependency in dependant.dependencies:
        yield from _calls(dependency)


def _anonymous_operations(routes: Sequence[BaseRoute]) -> set[tuple[str, str]]:
    """(path, method) of the operations that require no signed-in user and no mini-app."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(routes):
        dependant: Dependant | None = getattr(route, "dependant", None)
        calls = set(_calls(dependant)) if dependant is not None else set()
        if dependant is not None and calls.isdisjoint({require_principal, mini_app_caller}):
            found.update((str(route.path_format), method.lower()) for method in route.methods or ())
    return found


def _takes_idempotency_key(operation: dict[str, Any]) -> bool:
    return any(
        parameter.get("in") == "header" and parameter.get("name") == IDEMPOTENCY_KEY_HEADER
        for parameter in operation.get("parameters", [])
    )


def _rewrite(schema: dict[str, Any], anonymous: set[tuple[str, str]]) -> dict[str, Any]:
    for path_name, path in schema.get("paths", {}).items():
        for method, operation in path.items():
            if "security" in operation and (path_name, method) in anonymous:
                operation["security"].append({})
            responses: dict[str, Any] = operation.get("responses", {})
            responses.pop("422", None)
            if _takes_idempotency_key(operation):
                responses["422"] = {
                    "description": _DESCRIPTIONS[422],
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}},
                }
                operation["responses"] = responses = dict(sorted(responses.items()))
            for status, response in responses.items():
                content = response.get("content", {})
                json_body = content.get("application/json")
                if json_body is not None and json_body.get("schema") == _PROBLEM_REF:
                    response["content"] = {PROBLEM_MEDIA_TYPE: json_body}
                    headers = _HEADERS.get(int(status))
                    if headers:
                        response["headers"] = headers
    schemas = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the rewritten document (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _rewrite(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                ),
                _anonymous_operations(app.routes),
            )
        return app.openapi_schema

    replace: Callable[[], dict[str, Any]] = openapi
    app.openapi = replace  # type: ignore[method-assign]
