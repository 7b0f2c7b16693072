"""Refuse request bodies above a size limit with a 413 problem, before they are buffered.

A declared `Content-Length` above the limit is refused at once; a body without one
(chunked) is counted as it streams in and refused when it crosses the limit. Starlette's
own limiter answers in plain text, so this one stands in its place.

A few routes take larger bodies by their nature (a mini-app bundle upload): they are
named by method and path pattern with their own limit, still enforced before reading.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bff.problems import too_large_response

__all__ = ["BodySizeLimit", "LargerBodies", "RequestTooLarge"]


@dataclass(frozen=True)
class LargerBodies:
    """Requests of `method` whose path matches `path` may carry up to `max_bytes`."""

    method: str
    path: re.Pattern[str]
    max_bytes: int


class RequestTooLarge(HTTPException):
    """Raised from `receive` when a streamed body crosses the limit.

    An HTTPException, because FastAPI lets those through its body parsing unchanged (it
    turns any other error there into a 400) to the problem handlers.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            status_code=413, detail=f"the request body must be at most {max_bytes} bytes"
        )
        self.max_bytes = max_bytes


class BodySizeLimit:
    """ASGI middleware: at most `max_bytes` of body per HTTP request."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: Sequence[LargerBodies] = ()) -> None:
        self._app = app
        self._max = max_bytes
        self._larger = tuple(larger)

    def _limit(self, scope: Scope) -> int:
        for rule in self._larger:
            if scope["method"] == rule.method and rule.path.fullmatch(scope["path"]):
                return rule.max_bytes
        return self._max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = _content_length(scope)
        if declared is not None:
            if declared > limit:
                await too_large_response(limit)(scope, receive, send)
                return
            # The server delivers no more than the declared length.
            await self._app(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge(limit)
            return message

        await self._app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
