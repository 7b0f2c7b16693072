"""Route parameters shared by the routers: the upstreams, idempotency keys, paging.

Dependencies are `async def` even when they do not await: FastAPI runs plain functions
in a worker thread, two thread hops per request on the hottest paths.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query, Request
from fastapi.params import Depends as DependsMarker

from bff.config import BffSettings
from bff.rate_limits import limit_writes_by_ip, limit_writes_by_user
from bff.upstreams import Upstreams

__all__ = [
    "IDEMPOTENCY_KEY_HEADER",
    "WRITE_LIMITS",
    "IdempotencyKey",
    "PageSize",
    "PageToken",
    "SettingsDep",
    "UpstreamsDep",
    "next_token",
]


async def _upstreams(request: Request) -> Upstreams:
    upstreams: Upstreams = request.app.state.upstreams
    return upstreams


async def _settings(request: Request) -> BffSettings:
    settings: BffSettings = request.app.state.settings
    return settings


UpstreamsDep = Annotated[Upstreams, Depends(_upstreams)]
SettingsDep = Annotated[BffSettings, Depends(_settings)]

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IdempotencyKey = Annotated[
    str,
    Header(
        alias=IDEMPOTENCY_KEY_HEADER,
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="A client-generated key (a UUID is best) for this one operation. A "
        "retry with the same key and body returns the first result and has no further "
        "effect; the same key with a different body is refused (422 IDEMPOTENCY_KEY_REUSED).",
    ),
]
PageSize = Annotated[int, Query(ge=1, le=100, description="At most this many items (1-100).")]
PageToken = Annotated[
    str | None,
    Query(max_length=2048, description="`next_page_token` of the previous page."),
]

WRITE_LIMITS: list[DependsMarker] = [Depends(limit_writes_by_ip), Depends(limit_writes_by_user)]
"""Route dependencies of every write: per-IP, then per-user rate limits."""


def next_token(token: str) -> str | None:
    """An upstream `next_page_token` as JSON: null on the last page."""
    return token or None
