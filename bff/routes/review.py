"""Reviewers' work: the queue, a version's report, approve, reject, suspend a mini-app
(the kill switch) and reinstate it.

Roles are miniapps' to enforce (`reviewer` or `admin`); its PERMISSION_DENIED is 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from bff import conversions, schemas
from bff.authentication import SignedIn
from bff.dependencies import (
    WRITE_LIMITS,
    IdempotencyKey,
    PageSize,
    PageToken,
    UpstreamsDep,
    next_token,
)
from bff.openapi import errors
from bff.routes._mini_app_versions import version_with_report
from bff.schemas import Uuid

__all__ = ["router"]

router = APIRouter(prefix="/v1/review", tags=["mini-app review"])

MiniAppId = Annotated[Uuid, Path(description="The mini-app.")]
VersionId = Annotated[Uuid, Path(description="The version.")]


@router.get(
    "/queue",
    response_model=schemas.VersionPage,
    responses=errors(401, 403),
    summary="Versions waiting for a reviewer (reviewer)",
)
async def review_queue(
    principal: SignedIn,
    upstreams: UpstreamsDep,
    page_size: PageSize = 20,
    page_token: PageToken = None,
) -> schemas.VersionPage:
    """IN_REVIEW versions (their automated checks passed), oldest submission first."""
    reply = await upstreams.miniapps.ListReviewQueue(
        pb.ListReviewQueueRequest(page_size=page_size, page_token=page_token or ""),
        metadata=principal.metadata,
    )
    return schemas.VersionPage(
        versions=[conversions.version(v) for v in reply.versions],
        next_page_token=next_token(reply.next_page_token),
    )


@router.get(
    "/versions/{version_id}",
    response_model=schemas.VersionWithReport,
    responses=errors(401, 404),
    summary="A version and its review report (reviewer)",
)
async def get_version(
    version_id: VersionId, principal: SignedIn, upstreams: UpstreamsDep
) -> schemas.VersionWithReport:
    """The version and its automated checks' report (null until they have finished)."""
    return await version_with_report(upstreams, principal, version_id)


@router.post(
    "/versions/{version_id}/approve",
    response_model=schemas.Version,
    responses=errors(401, 403, 404, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Approve a version (reviewer)",
)
async def approve_version(
    version_id: VersionId,
    body: schemas.ApprovalRequest,
    key: IdempotencyKey,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.Version:
    """An IN_REVIEW version becomes APPROVED; its developer may publish it."""
    reply = await upstreams.miniapps.ApproveVersion(
        pb.ApproveVersionRequest(version_id=version_id, note=body.note, request_id=key),
        metadata=principal.metadata,
    )
    return conversions.version(reply.version)


@router.post(
    "/versions/{version_id}/reject",
    response_model=schemas.Version,
    responses=errors(401, 403, 404, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Reject a version with reasons (reviewer)",
)
async def reject_version(
    version_id: VersionId,
    body: schemas.RejectionRequest,
    key: IdempotencyKey,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.Version:
    """An IN_REVIEW version becomes REJECTED (final) with the reasons its developer reads."""
    reply = await upstreams.miniapps.RejectVersion(
        pb.RejectVersionRequest(version_id=version_id, reasons=body.reasons, request_id=key),
        metadata=principal.metadata,
    )
    return conversions.version(reply.version)


@router.post(
    "/mini-apps/{mini_app_id}/suspend",
    response_model=schemas.MiniApp,
    responses=errors(401, 403, 404, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Suspend a mini-app (reviewer)",
)
async def suspend_mini_app(
    mini_app_id: MiniAppId,
    body: schemas.SuspensionRequest,
    key: IdempotencyKey,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.MiniApp:
    """The mini-app becomes SUSPENDED: it leaves discovery and cannot be launched from
    the moment this returns, and its tokens stop working on every BFF within seconds
    (`BFF_MINI_APP_TOKEN_CACHE_SECONDS`); suspending a suspended one changes nothing."""
    reply = await upstreams.miniapps.SuspendMiniApp(
        pb.SuspendMiniAppRequest(mini_app_id=mini_app_id, reason=body.reason, request_id=key),
        metadata=principal.metadata,
    )
    return conversions.mini_app(reply.mini_app)


@router.post(
    "/mini-apps/{mini_app_id}/reinstate",
    response_model=schemas.MiniApp,
    responses=errors(401, 403, 404, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Reinstate a suspended mini-app (reviewer)",
)
async def reinstate_mini_app(
    mini_app_id: MiniAppId,
    body: schemas.ReinstatementRequest,
    key: IdempotencyKey,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.MiniApp:
    """The mini-app becomes ACTIVE again and the version suspended with it PUBLISHED: it
    is back in discovery and can be launched from the moment this returns, and its
    tokens work again within seconds; reinstating an active one changes nothing."""
    reply = await upstreams.miniapps.ReinstateMiniApp(
        pb.ReinstateMiniAppRequest(mini_app_id=mini_app_id, note=body.note, request_id=key),
        metadata=principal.metadata,
    )
    return conversions.mini_app(reply.mini_app)
