"""Query parameters a route does not declare are refused, not ignored.

A misspelt parameter (`page_sise=10`, `currency=EUR`) that were ignored would quietly
give the client another answer than it asked for (the default page, every currency),
which is a silent success; refused, it names the parameter.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from services.runtime.errors import FieldViolation, InvalidArgument

__all__ = ["QueryParameters", "refuse_unknown_query_parameters"]


class QueryParameters:
    """The query parameters each route declares, worked out once per route."""

    def __init__(self) -> None:
        # By id: routes compare by value and are not hashable; they live as long as the app.
        self._known: dict[int, frozenset[str]] = {}

    def unknown(self, route: object, names: Iterable[str]) -> list[str]:
        """The names among `names` that `route` does not declare (none for other routes)."""
        if not isinstance(route, APIRoute):
            return []
        known = self._known.get(id(route))
        if known is None:
            known = self._known[id(route)] = _query_names(route.dependant)
        return sorted(set(names) - known)


def _query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters of `dependant` and of everything it depends on."""
    names = {parameter.alias for parameter in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return frozenset(names)


async def refuse_unknown_query_parameters(request: Request) -> None:
    """INVALID_ARGUMENT naming each query parameter the route does not declare."""
    parameters: QueryParameters = request.app.state.query_parameters
    unknown = parameters.unknown(request.scope.get("route"), request.query_params.keys())
    if unknown:
        raise InvalidArgument(
            [
                FieldViolation(name, "is not a parameter of this operation", "UNKNOWN_PARAMETER")
                for name in unknown
            ]
        )
