"""The signed-in user's own profile."""

from __future__ import annotations

from fastapi import APIRouter
from google.protobuf.field_mask_pb2 import FieldMask
from superapp.identity.v1 import identity_service_pb2 as pb

from bff import conversions, schemas
from bff.authentication import SignedIn
from bff.dependencies import WRITE_LIMITS, IdempotencyKey, UpstreamsDep
from bff.openapi import errors

__all__ = ["router"]

router = APIRouter(prefix="/v1/me", tags=["me"])


@router.get("", response_model=schemas.UserProfile, responses=errors(401), summary="My profile")
async def get_profile(principal: SignedIn, upstreams: UpstreamsDep) -> schemas.UserProfile:
    """The signed-in user's profile."""
    reply = await upstreams.identity.GetUser(
        pb.GetUserRequest(user_id=principal.user_id), metadata=principal.metadata
    )
    return conversions.user(reply.user)


@router.patch(
    "",
    response_model=schemas.UserProfile,
    responses=errors(401, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Change my profile",
)
async def update_profile(
    body: schemas.ProfileChanges,
    key: IdempotencyKey,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.UserProfile:
    """Change the display name."""
    reply = await upstreams.identity.UpdateUser(
        pb.UpdateUserRequest(
            user=pb.User(user_id=principal.user_id, display_name=body.display_name),
            update_mask=FieldMask(paths=["display_name"]),
            request_id=key,
        ),
        metadata=principal.metadata,
    )
    return conversions.user(reply.user)
