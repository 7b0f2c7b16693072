"""The shell's mini-apps: discovery, launch, the bundles themselves; and what every
developer reads before building one (the manifest's JSON Schema, the review's rules).

A bundle's URL is its SHA-256, so its bytes never change: it is served for caches to keep
forever (`immutable`, a strong ETag that is the digest). Whether the caller may have it
is still miniapps' decision on every request (a suspended mini-app's bundle is refused
to users), which is why even a revalidation asks miniapps for it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from bff import conversions, schemas
from bff.authentication import SignedIn
from bff.dependencies import PageSize, PageToken, UpstreamsDep, next_token
from bff.miniapp_manifests import Manifests
from bff.openapi import errors
from bff.routes.developer import BUNDLE_MEDIA_TYPE
from bff.schemas import Uuid
from services.miniapps.review import RULES, manifest_schema
from services.runtime.errors import FailedPrecondition

__all__ = ["BUNDLE_PATH", "router"]

router = APIRouter(tags=["mini-apps"])

BUNDLE_PATH = "/v1/miniapp-bundles/{sha256}"
_IMMUTABLE = "public, max-age=31536000, immutable"
_Sha256 = Annotated[
    str,
    Path(pattern=r"^[0-9a-f]{64}$", description="The bundle's SHA-256, lower-case hex."),
]
_BUNDLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The zip bundle; check it against the launch's `integrity`.",
        "content": {BUNDLE_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            "ETag": {"description": "The SHA-256, quoted.", "schema": {"type": "string"}},
            "Cache-Control": {"description": _IMMUTABLE, "schema": {"type": "string"}},
        },
    },
    304: {"description": "The copy named by If-None-Match is current (it always is)."},
}


async def _manifests(request: Request) -> Manifests:
    manifests: Manifests = request.app.state.manifests
    return manifests


@router.get(
    "/v1/mini-apps",
    response_model=schemas.MiniAppPage,
    responses=errors(401),
    summary="Discover mini-apps",
)
async def discover_mini_apps(
    principal: SignedIn,
    upstreams: UpstreamsDep,
    category: Annotated[
        schemas.MiniAppCategory | None, Query(description="Only this category.")
    ] = None,
    query: Annotated[
        str | None,
        Query(max_length=100, description="Only those whose name or description contains it."),
    ] = None,
    page_size: PageSize = 20,
    page_token: PageToken = None,
) -> schemas.MiniAppPage:
    """Published mini-apps users can open, most recently published first; a suspended
    one is gone from the moment its suspension commits."""
    reply = await upstreams.miniapps.ListPublishedMiniApps(
        pb.ListPublishedMiniAppsRequest(
            category=conversions.mini_app_category(category)
            if category
            else pb.CATEGORY_UNSPECIFIED,
            query=query or "",
            page_size=page_size,
            page_token=page_token or "",
        ),
        metadata=principal.metadata,
    )
    return schemas.MiniAppPage(
        mini_apps=[conversions.mini_app(m) for m in reply.mini_apps],
        next_page_token=next_token(reply.next_page_token),
    )


@router.get(
    "/v1/mini-apps/{mini_app_id}/launch",
    response_model=schemas.MiniAppLaunch,
    responses=errors(401, 404),
    summary="Launch a mini-app",
)
async def launch_mini_app(
    mini_app_id: Annotated[Uuid, Path(description="The mini-app.")],
    principal: SignedIn,
    upstreams: UpstreamsDep,
    request: Request,
) -> schemas.MiniAppLaunch:
    """The published version's manifest, the bundle's URL and its Subresource Integrity
    value. A suspended mini-app is not launched (404 for users; 400 `MINI_APP_SUSPENDED`
    for its developer and reviewers, who still see it)."""
    app = (
        await upstreams.miniapps.GetMiniApp(
            pb.GetMiniAppRequest(mini_app_id=mini_app_id), metadata=principal.metadata
        )
    ).mini_app
    if app.status == pb.MINI_APP_STATUS_SUSPENDED:
        raise FailedPrecondition(
            "MINI_APP_SUSPENDED", "the mini-app is suspended", metadata={"mini_app_id": mini_app_id}
        )
    if not app.published_version_id:
        raise FailedPrecondition(
            "MINI_APP_NOT_PUBLISHED",
            "the mini-app has no published version yet",
            metadata={"mini_app_id": mini_app_id},
        )
    version = (
        await upstreams.miniapps.GetVersion(
            pb.GetVersionRequest(version_id=app.published_version_id),
            metadata=principal.metadata,
        )
    ).version

    async def bundle() -> bytes:
        reply = await upstreams.miniapps.GetBundle(
            pb.GetBundleRequest(sha256=version.bundle_sha256), metadata=principal.metadata
        )
        return reply.content

    manifest = await (await _manifests(request)).get(version.bundle_sha256, bundle)
    return schemas.MiniAppLaunch(
        mini_app=conversions.mini_app(app),
        version_id=version.version_id,
        manifest=manifest,
        bundle_url=BUNDLE_PATH.format(sha256=version.bundle_sha256),
        bundle_sha256=version.bundle_sha256,
        integrity=version.bundle_integrity,
    )


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison, `*` matches any current representation."""
    if if_none_match is None:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip().removeprefix("W/")
        if tag in ("*", etag):
            return True
    return False


@router.get(
    BUNDLE_PATH,
    response_class=Response,
    responses={**_BUNDLE_RESPONSES, **errors(401, 404)},
    summary="A mini-app bundle by its SHA-256",
)
async def get_bundle(
    sha256: _Sha256,
    principal: SignedIn,
    upstreams: UpstreamsDep,
    if_none_match: Annotated[
        str | None,
        Header(max_length=4096, description="ETags the client holds; 304 when one is current."),
    ] = None,
) -> Response:
    """The bundle's bytes, cacheable forever (`Cache-Control: public, max-age=31536000,
    immutable`, `ETag` = the quoted SHA-256); 304 on a matching If-None-Match."""
    reply = await upstreams.miniapps.GetBundle(
        pb.GetBundleRequest(sha256=sha256), metadata=principal.metadata
    )
    etag = f'"{reply.sha256}"'
    headers = {"ETag": etag, "Cache-Control": _IMMUTABLE}
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(reply.content, media_type=BUNDLE_MEDIA_TYPE, headers=headers)


@router.get(
    "/v1/mini-app-manifest/schema",
    response_model=dict[str, Any],
    responses=errors(),
    summary="The JSON Schema of a bundle's manifest.json",
)
async def get_manifest_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) every bundle's manifest.json is checked against."""
    return manifest_schema()


@router.get(
    "/v1/mini-app-review/rules",
    response_model=list[schemas.ReviewRule],
    responses=errors(),
    summary="The automated review's rules",
)
async def list_review_rules() -> list[schemas.ReviewRule]:
    """Every rule id a review report's findings may name, with what it means."""
    return [schemas.ReviewRule(rule=rule, description=text) for rule, text in RULES.items()]
