"""MiniAppsService over gRPC: translates proto ⇄ domain, nothing more (the contract's
rules and `request_checks` have checked each request before a handler runs).

Mutations run through `IdempotentWrites`, scoped to the caller and the RPC. A client
secret is never part of what is stored for a replay: the handler adds it to the
response only when its own run made it (see the contract's Idempotency section).
"""

from __future__ import annotations

from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.miniapps.v1 import miniapps_service_pb2 as pb
from superapp.miniapps.v1 import miniapps_service_pb2_grpc

from services.auth.caller import require_caller
from services.database.idempotency import IdempotentWrites
from services.miniapps.access import is_staff
from services.miniapps.bundles import BundleStore, check_bundle
from services.miniapps.discovery import Discovery
from services.miniapps.messages import mini_app_message, version_message
from services.miniapps.registry import Registry
from services.miniapps.reports import Reports
from services.miniapps.request_checks import app_fields
from services.miniapps.versions import Versions, from_micros, to_micros
from services.runtime.errors import PermissionDenied
from services.runtime.page_tokens import EpochMicros, PageTokens
from services.runtime.proto_time import to_timestamp
from services.runtime.validation import page_size

__all__ = ["MiniAppsServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class MiniAppsServicer(miniapps_service_pb2_grpc.MiniAppsServiceServicer):
    """The miniapps gRPC service."""

    def __init__(
        self,
        *,
        registry: Registry,
        versions: Versions,
        bundles: BundleStore,
        reports: Reports,
        discovery: Discovery,
        writes: IdempotentWrites,
        page_tokens: PageTokens,
    ) -> None:
        self._registry = registry
        self._versions = versions
        self._bundles = bundles
        self._reports = reports
        self._discovery = discovery
        self._writes = writes
        self._page_tokens = page_tokens

    # Registry

    async def RegisterMiniApp(
        self, request: pb.RegisterMiniAppRequest, context: Context
    ) -> pb.RegisterMiniAppResponse:
        fields = app_fields(request.mini_app)
        caller = require_caller()
        secrets: list[str] = []

        async def register(session: AsyncSession) -> pb.RegisterMiniAppResponse:
            registration = await self._registry.register(session, caller, fields)
            secrets.append(registration.client_secret)
            return pb.RegisterMiniAppResponse(mini_app=mini_app_message(registration.app))

        response = await self._writes.run_for(
            "RegisterMiniApp", caller.user_id, request, pb.RegisterMiniAppResponse, register
        )
        response.client_secret = secrets[0] if secrets else ""
        return response

    async def GetMiniApp(
        self, request: pb.GetMiniAppRequest, context: Context
    ) -> pb.GetMiniAppResponse:
        app = await self._registry.get(require_caller(), request.mini_app_id)
        return pb.GetMiniAppResponse(mini_app=mini_app_message(app))

    async def ListMyMiniApps(
        self, request: pb.ListMyMiniAppsRequest, context: Context
    ) -> pb.ListMyMiniAppsResponse:
        size = page_size(request.page_size)
        caller = require_caller()
        scope: list[object] = ["ListMyMiniApps", caller.user_id]
        after = self._page_tokens.decode(request.page_token, scope, (str,))
        page = await self._registry.page_of_developer(
            caller.user_id, after=str(after[0]) if after else None, size=size
        )
        return pb.ListMyMiniAppsResponse(
            mini_apps=[mini_app_message(app) for app in page.apps],
            next_page_token=(
                self._page_tokens.encode([page.next_after], scope) if page.next_after else ""
            ),
        )

    async def RotateClientSecret(
        self, request: pb.RotateClientSecretRequest, context: Context
    ) -> pb.RotateClientSecretResponse:
        caller = require_caller()
        secrets: list[str] = []

        async def rotate(session: AsyncSession) -> pb.RotateClientSecretResponse:
            rotated = await self._registry.rotate_secret(session, caller, request.mini_app_id)
            secrets.append(rotated.client_secret)
            return pb.RotateClientSecretResponse(mini_app=mini_app_message(rotated.app))

        response = await self._writes.run_for(
            "RotateClientSecret", caller.user_id, request, pb.RotateClientSecretResponse, rotate
        )
        response.client_secret = secrets[0] if secrets else ""
        return response

    # Versions and bundles

    async def UploadVersion(
        self, request: pb.UploadVersionRequest, context: Context
    ) -> pb.UploadVersionResponse:
        check_bundle(request.bundle)
        caller = require_caller()
        content = request.bundle
        digests = await self._bundles.digest(content)

        async def upload(session: AsyncSession) -> pb.UploadVersionResponse:
            version = await self._versions.upload(
                session, caller, request.mini_app_id, content, digests
            )
            return pb.UploadVersionResponse(version=version_message(version))

        return await self._writes.run_for(
            "UploadVersion", caller.user_id, request, pb.UploadVersionResponse, upload
        )

    async def GetVersion(
        self, request: pb.GetVersionRequest, context: Context
    ) -> pb.GetVersionResponse:
        version = await self._versions.get(require_caller(), request.version_id)
        return pb.GetVersionResponse(version=version_message(version))

    async def ListVersions(
        self, request: pb.ListVersionsRequest, context: Context
    ) -> pb.ListVersionsResponse:
        size = page_size(request.page_size)
        caller = require_caller()
        scope: list[object] = ["ListVersions", request.mini_app_id, caller.user_id]
        after = self._page_tokens.decode(request.page_token, scope, (str,))
        page = await self._versions.page_of_app(
            caller, request.mini_app_id, after=str(after[0]) if after else None, size=size
        )
        return pb.ListVersionsResponse(
            versions=[version_message(version) for version in page.versions],
            next_page_token=(
                self._page_tokens.encode([page.next_after], scope) if page.next_after else ""
            ),
        )

    async def GetBundle(
        self, request: pb.GetBundleRequest, context: Context
    ) -> pb.GetBundleResponse:
        bundle = await self._bundles.read(require_caller(), request.sha256)
        return pb.GetBundleResponse(
            sha256=bundle.sha256, integrity=bundle.integrity, content=bundle.content
        )

    # Review pipeline

    async def SubmitVersion(
        self, request: pb.SubmitVersionRequest, context: Context
    ) -> pb.SubmitVersionResponse:
        caller = require_caller()

        async def submit(session: AsyncSession) -> pb.SubmitVersionResponse:
            version = await self._versions.submit(session, caller, request.version_id)
            return pb.SubmitVersionResponse(version=version_message(version))

        return await self._writes.run_for(
            "SubmitVersion", caller.user_id, request, pb.SubmitVersionResponse, submit
        )

    async def GetReviewReport(
        self, request: pb.GetReviewReportRequest, context: Context
    ) -> pb.GetReviewReportResponse:
        report = await self._reports.read(require_caller(), request.version_id)
        return pb.GetReviewReportResponse(
            report=pb.ReviewReport(
                version_id=report.version_id,
                passed=report.passed,
                findings=[
                    pb.Finding(file=f.file, line=f.line, rule=f.rule, message=f.message)
                    for f in report.findings
                ],
                create_time=to_timestamp(report.create_time),
            )
        )

    async def ListReviewQueue(
        self, request: pb.ListReviewQueueRequest, context: Context
    ) -> pb.ListReviewQueueResponse:
        size = page_size(request.page_size)
        caller = require_caller()
        if not is_staff(caller):  # the policy says so too; the handler never trusts
            raise PermissionDenied("PERMISSION_DENIED", "reviewers and admins only")
        scope: list[object] = ["ListReviewQueue"]
        after = self._page_tokens.decode(request.page_token, scope, (EpochMicros, str))
        page = await self._versions.review_queue(
            after=(int(after[0]), str(after[1])) if after else None, size=size
        )
        token = ""
        if page.next_after is not None:
            last = page.versions[-1]
            assert last.submit_time is not None  # every queued version was submitted
            token = self._page_tokens.encode([to_micros(last.submit_time), last.version_id], scope)
        return pb.ListReviewQueueResponse(
            versions=[version_message(version) for version in page.versions],
            next_page_token=token,
        )

    async def ApproveVersion(
        self, request: pb.ApproveVersionRequest, context: Context
    ) -> pb.ApproveVersionResponse:
        caller = require_caller()

        async def approve(session: AsyncSession) -> pb.ApproveVersionResponse:
            version = await self._versions.approve(
                session, caller, request.version_id, request.note
            )
            return pb.ApproveVersionResponse(version=version_message(version))

        return await self._writes.run_for(
            "ApproveVersion", caller.user_id, request, pb.ApproveVersionResponse, approve
        )

    async def RejectVersion(
        self, request: pb.RejectVersionRequest, context: Context
    ) -> pb.RejectVersionResponse:
        caller = require_caller()

        async def reject(session: AsyncSession) -> pb.RejectVersionResponse:
            version = await self._versions.reject(
                session, caller, request.version_id, list(request.reasons)
            )
            return pb.RejectVersionResponse(version=version_message(version))

        return await self._writes.run_for(
            "RejectVersion", caller.user_id, request, pb.RejectVersionResponse, reject
        )

    async def PublishVersion(
        self, request: pb.PublishVersionRequest, context: Context
    ) -> pb.PublishVersionResponse:
        caller = require_caller()

        async def publish(session: AsyncSession) -> pb.PublishVersionResponse:
            version, app = await self._versions.publish(session, caller, request.version_id)
            return pb.PublishVersionResponse(
                version=version_message(version), mini_app=mini_app_message(app)
            )

        return await self._writes.run_for(
            "PublishVersion", caller.user_id, request, pb.PublishVersionResponse, publish
        )

    async def SuspendMiniApp(
        self, request: pb.SuspendMiniAppRequest, context: Context
    ) -> pb.SuspendMiniAppResponse:
        caller = require_caller()

        async def suspend(session: AsyncSession) -> pb.SuspendMiniAppResponse:
            app = await self._versions.suspend(session, caller, request.mini_app_id, request.reason)
            return pb.SuspendMiniAppResponse(mini_app=mini_app_message(app))

        return await self._writes.run_for(
            "SuspendMiniApp", caller.user_id, request, pb.SuspendMiniAppResponse, suspend
        )

    async def ReinstateMiniApp(
        self, request: pb.ReinstateMiniAppRequest, context: Context
    ) -> pb.ReinstateMiniAppResponse:
        caller = require_caller()

        async def reinstate(session: AsyncSession) -> pb.ReinstateMiniAppResponse:
            app = await self._versions.reinstate(session, caller, request.mini_app_id, request.note)
            return pb.ReinstateMiniAppResponse(mini_app=mini_app_message(app))

        return await self._writes.run_for(
            "ReinstateMiniApp", caller.user_id, request, pb.ReinstateMiniAppResponse, reinstate
        )

    # Discovery

    async def ListPublishedMiniApps(
        self, request: pb.ListPublishedMiniAppsRequest, context: Context
    ) -> pb.ListPublishedMiniAppsResponse:
        size = page_size(request.page_size)
        require_caller()
        category = (
            pb.Category.Name(request.category).removeprefix("CATEGORY_")
            if request.category
            else None
        )
        scope: list[object] = ["ListPublishedMiniApps", category, request.query]
        after = self._page_tokens.decode(request.page_token, scope, (EpochMicros, str))
        page = await self._discovery.page(
            category=category,
            query=request.query,
            after=(from_micros(int(after[0])), str(after[1])) if after else None,
            size=size,
        )
        token = ""
        if page.next_after is not None:
            last = page.apps[-1]
            assert last.publish_time is not None  # listed apps were published
            token = self._page_tokens.encode(
                [to_micros(last.publish_time), last.mini_app_id], scope
            )
        return pb.ListPublishedMiniAppsResponse(
            mini_apps=[mini_app_message(app) for app in page.apps], next_page_token=token
        )
