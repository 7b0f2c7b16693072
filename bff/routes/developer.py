"""A developer's mini-apps: register, list, rotate the secret, upload, submit, publish.

Roles are miniapps' to enforce (`developer` or `admin`); its PERMISSION_DENIED is 403.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.exceptions import HTTPException
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from bff import conversions, schemas
from bff.authentication import SignedIn
from bff.body_limit import LargerBodies
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
from services.miniapps.bundles import BUNDLE_MAX_BYTES

__all__ = ["BUNDLE_UPLOADS", "router"]

router = APIRouter(prefix="/v1/developer", tags=["mini-app developers"])

MiniAppId = Annotated[Uuid, Path(description="The mini-app.")]
VersionId = Annotated[Uuid, Path(description="The version.")]
BUNDLE_MEDIA_TYPE = "application/zip"

BUNDLE_UPLOADS = LargerBodies(
    method="POST",
    path=re.compile(r"/v1/developer/mini-apps/[^/]+/versions"),
    max_bytes=BUNDLE_MAX_BYTES,
)
"""Uploads carry a bundle: up to miniapps' contract limit, refused (413) above it before
it is read."""

_BUNDLE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": f"The zip bundle: manifest.json plus HTML, JS and CSS; at most "
        f"{BUNDLE_MAX_BYTES} bytes (8 MiB).",
        "content": {
            BUNDLE_MEDIA_TYPE: {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "minLength": 1,
                    "maxLength": BUNDLE_MAX_BYTES,
                }
            }
        },
    }
}


def _with_secret(mini_app: pb.MiniApp, secret: str) -> schemas.MiniAppWithSecret:
    return schemas.MiniAppWithSecret(
        mini_app=conversions.mini_app(mini_app), client_secret=secret or None
    )


@router.post(
    "/mini-apps",
    status_code=201,
    response_model=schemas.MiniAppWithSecret,
    responses=errors(401, 403, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Register a mini-app (developer)",
)
async def register_mini_app(
    body: schemas.MiniAppRegistration,
    key: IdempotencyKey,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.MiniAppWithSecret:
    """A new ACTIVE mini-app owned by the caller, with its backend's OAuth client id and
    client secret. The secret is shown in this response only: a retry with the same
    Idempotency-Key answers with `client_secret` null (rotate it to get a new one)."""
    reply = await upstreams.miniapps.RegisterMiniApp(
        pb.RegisterMiniAppRequest(
            mini_app=pb.MiniApp(
                name=body.name,
                category=conversions.mini_app_category(body.category),
                description=body.description,
                icon_url=body.icon_url,
                redirect_uris=body.redirect_uris,
                network_domains=body.network_domains,
            ),
            request_id=key,
        ),
        metadata=principal.metadata,
    )
    return _with_secret(reply.mini_app, reply.client_secret)


@router.get(
    "/mini-apps",
    response_model=schemas.MiniAppPage,
    responses=errors(401, 403),
    summary="My mini-apps (developer)",
)
async def list_my_mini_apps(
    principal: SignedIn,
    upstreams: UpstreamsDep,
    page_size: PageSize = 20,
    page_token: PageToken = None,
) -> schemas.MiniAppPage:
    """The caller's mini-apps in every status, newest first."""
    reply = await upstreams.miniapps.ListMyMiniApps(
        pb.ListMyMiniAppsRequest(page_size=page_size, page_token=page_token or ""),
        metadata=principal.metadata,
    )
    return schemas.MiniAppPage(
        mini_apps=[conversions.mini_app(m) for m in reply.mini_apps],
        next_page_token=next_token(reply.next_page_token),
    )


@router.get(
    "/mini-apps/{mini_app_id}",
    response_model=schemas.MiniApp,
    responses=errors(401, 404),
    summary="One of my mini-apps (developer)",
)
async def get_my_mini_app(
    mini_app_id: MiniAppId, principal: SignedIn, upstreams: UpstreamsDep
) -> schemas.MiniApp:
    """A mini-app in any status (its developer, reviewers and admins; to anyone else an
    unpublished mini-app does not exist)."""
    reply = await upstreams.miniapps.GetMiniApp(
        pb.GetMiniAppRequest(mini_app_id=mini_app_id), metadata=principal.metadata
    )
    return conversions.mini_app(reply.mini_app)


@router.post(
    "/mini-apps/{mini_app_id}/client-secret",
    response_model=schemas.MiniAppWithSecret,
    responses=errors(401, 403, 404, 429),
    dependencies=WRITE_LIMITS,
    summary="Rotate the client secret (developer)",
)
async def rotate_client_secret(
    mini_app_id: MiniAppId, key: IdempotencyKey, principal: SignedIn, upstreams: UpstreamsDep
) -> schemas.MiniAppWithSecret:
    """A new client secret, shown in this response only; the old one stops working at
    once. A retry with the same Idempotency-Key answers with `client_secret` null."""
    reply = await upstreams.miniapps.RotateClientSecret(
        pb.RotateClientSecretRequest(mini_app_id=mini_app_id, request_id=key),
        metadata=principal.metadata,
    )
    return _with_secret(reply.mini_app, reply.client_secret)


@router.post(
    "/mini-apps/{mini_app_id}/webhook-endpoint",
    response_model=schemas.WebhookEndpoint,
    responses=errors(400, 401, 403, 404, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Set the webhook endpoint (developer)",
)
async def set_webhook_endpoint(
    mini_app_id: MiniAppId,
    body: schemas.WebhookEndpointBody,
    key: IdempotencyKey,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.WebhookEndpoint:
    """Where the mini-app's backend receives its signed events (payment requests
    confirmed, succeeded, failed, declined, expired), with a new signing secret shown
    in this response only; setting it again rotates the secret at once. A retry with
    the same Idempotency-Key answers with `signing_secret` null."""
    reply = await upstreams.miniapps.SetWebhookEndpoint(
        pb.SetWebhookEndpointRequest(mini_app_id=mini_app_id, url=body.url, request_id=key),
        metadata=principal.metadata,
    )
    return schemas.WebhookEndpoint(
        mini_app_id=reply.mini_app_id, url=reply.url, signing_secret=reply.signing_secret or None
    )


@router.post(
    "/mini-apps/{mini_app_id}/versions",
    status_code=201,
    response_model=schemas.Version,
    responses=errors(401, 403, 404, 413, 415, 429),
    dependencies=WRITE_LIMITS,
    openapi_extra=_BUNDLE_BODY,
    summary="Upload a version's bundle (developer)",
)
async def upload_version(
    mini_app_id: MiniAppId,
    request: Request,
    key: IdempotencyKey,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.Version:
    """A new DRAFT version from the zip bundle sent as the body (`Content-Type:
    application/zip`, at most 8 MiB: 413 above, before it is read). Only the archive
    is checked here (400 `NOT_A_ZIP`); the manifest and code are checked on submit."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != BUNDLE_MEDIA_TYPE:
        raise HTTPException(415, f"the body must be a zip bundle ({BUNDLE_MEDIA_TYPE})")
    bundle = await request.body()
    reply = await upstreams.miniapps.UploadVersion(
        pb.UploadVersionRequest(mini_app_id=mini_app_id, bundle=bundle, request_id=key),
        metadata=principal.metadata,
    )
    return conversions.version(reply.version)


@router.get(
    "/mini-apps/{mini_app_id}/versions",
    response_model=schemas.VersionPage,
    responses=errors(401, 404),
    summary="A mini-app's versions (developer)",
)
async def list_versions(
    mini_app_id: MiniAppId,
    principal: SignedIn,
    upstreams: UpstreamsDep,
    page_size: PageSize = 20,
    page_token: PageToken = None,
) -> schemas.VersionPage:
    """The mini-app's versions, newest first."""
    reply = await upstreams.miniapps.ListVersions(
        pb.ListVersionsRequest(
            mini_app_id=mini_app_id, page_size=page_size, page_token=page_token or ""
        ),
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
    summary="A version and its review report (developer)",
)
async def get_version(
    version_id: VersionId, principal: SignedIn, upstreams: UpstreamsDep
) -> schemas.VersionWithReport:
    """The version and, once the automated checks have finished, their report: every
    finding with its file, line, rule and message (null before)."""
    return await version_with_report(upstreams, principal, version_id)


@router.post(
    "/versions/{version_id}/submit",
    response_model=schemas.Version,
    responses=errors(401, 403, 404, 429),
    dependencies=WRITE_LIMITS,
    summary="Submit a version for review (developer)",
)
async def submit_version(
    version_id: VersionId, key: IdempotencyKey, principal: SignedIn, upstreams: UpstreamsDep
) -> schemas.Version:
    """A DRAFT version becomes SUBMITTED; the automated checks run off the request path
    and move it to IN_REVIEW or REJECTED (poll the version for the outcome)."""
    reply = await upstreams.miniapps.SubmitVersion(
        pb.SubmitVersionRequest(version_id=version_id, request_id=key),
        metadata=principal.metadata,
    )
    return conversions.version(reply.version)


@router.post(
    "/versions/{version_id}/publish",
    response_model=schemas.PublishedVersion,
    responses=errors(401, 403, 404, 429),
    dependencies=WRITE_LIMITS,
    summary="Publish an approved version (developer)",
)
async def publish_version(
    version_id: VersionId, key: IdempotencyKey, principal: SignedIn, upstreams: UpstreamsDep
) -> schemas.PublishedVersion:
    """An APPROVED version becomes what users discover and launch; the previously
    published one, if any, becomes SUPERSEDED."""
    reply = await upstreams.miniapps.PublishVersion(
        pb.PublishVersionRequest(version_id=version_id, request_id=key),
        metadata=principal.metadata,
    )
    return schemas.PublishedVersion(
        version=conversions.version(reply.version), mini_app=conversions.mini_app(reply.mini_app)
    )
