"""The API of mini-apps' backends: what a mini-app may do for a user who granted it.

Every route takes the mini-app's token (`MiniAppCallerDep`: verified, rate-limited and
counted per mini-app, see `bff.mini_app_callers`) and, where it needs one, a scope the
user granted (`with_scope`). Nothing here ever answers with the user's real id: a
mini-app knows the user by the pairwise subject only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from superapp.identity.v1 import identity_service_pb2 as identity_pb

from bff import schemas
from bff.dependencies import UpstreamsDep
from bff.mini_app_callers import (
    MINI_APP_API_PREFIX,
    MiniAppCaller,
    service_identity,
    with_scope,
)
from bff.openapi import errors

__all__ = ["router"]

router = APIRouter(prefix=MINI_APP_API_PREFIX, tags=["mini-app API"])

# A mini-app's answers are about one user: no shared cache may keep them.
_PRIVATE = "no-store"


@router.get(
    "/me",
    response_model=schemas.MiniAppUser,
    responses=errors(401, 403, 429),
    summary="The user the mini-app acts for (scope profile.basic)",
)
async def me(
    request: Request,
    response: Response,
    caller: Annotated[MiniAppCaller, Depends(with_scope("profile.basic"))],
    upstreams: UpstreamsDep,
) -> schemas.MiniAppUser:
    """The user's pairwise subject (the id this mini-app knows them by) and display
    name. Needs the `profile.basic` scope (403 `SCOPE_NOT_GRANTED` without it)."""
    reply = await upstreams.identity.GetUser(
        identity_pb.GetUserRequest(user_id=caller.user_id),
        metadata=await service_identity(request).metadata(),
    )
    response.headers["Cache-Control"] = _PRIVATE
    return schemas.MiniAppUser(subject=caller.subject, display_name=reply.user.display_name)
