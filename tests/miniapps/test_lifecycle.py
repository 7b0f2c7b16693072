"""The whole lifecycle over gRPC on both backends: register → upload → submit → checks
(off the request path, through the service's own events) → review → publish → discover →
suspend → gone from discovery → reinstate → back; and a version the checks reject, with
its findings."""

from __future__ import annotations

import asyncio

import grpc
from superapp.miniapps.v1 import events_pb2
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from services.runtime.ids import new_id
from tests.miniapps.conftest import Metadata, Platform, good_bundle_files, zip_bundle
from tests.services.rich_errors import failure


async def _settled(platform: Platform, version_id: str, metadata: Metadata) -> pb.Version:
    """The version once the checks have moved it past SUBMITTED and CHECKING."""
    while True:
        reply = await platform.stub.GetVersion(
            pb.GetVersionRequest(version_id=version_id), metadata=metadata
        )
        if reply.version.state not in (pb.VERSION_STATE_SUBMITTED, pb.VERSION_STATE_CHECKING):
            return reply.version
        await asyncio.sleep(0.05)


async def _submitted(platform: Platform, developer: Metadata, version_id: str) -> pb.Version:
    await platform.stub.SubmitVersion(
        pb.SubmitVersionRequest(version_id=version_id, request_id=new_id()), metadata=developer
    )
    return await asyncio.wait_for(_settled(platform, version_id, developer), 60)


async def _published(
    platform: Platform, developer: Metadata, reviewer: Metadata, app_id: str, version: str
) -> pb.Version:
    uploaded = await platform.uploaded(developer, app_id, zip_bundle(good_bundle_files(version)))
    checked = await _submitted(platform, developer, uploaded.version_id)
    assert checked.state == pb.VERSION_STATE_IN_REVIEW
    await platform.stub.ApproveVersion(
        pb.ApproveVersionRequest(version_id=uploaded.version_id, request_id=new_id()),
        metadata=reviewer,
    )
    reply = await platform.stub.PublishVersion(
        pb.PublishVersionRequest(version_id=uploaded.version_id, request_id=new_id()),
        metadata=developer,
    )
    return reply.version


async def _discover(platform: Platform, user: Metadata, **filters: object) -> list[str]:
    reply = await platform.stub.ListPublishedMiniApps(
        pb.ListPublishedMiniAppsRequest(**filters),
        metadata=user,  # type: ignore[arg-type]
    )
    return [app.mini_app_id for app in reply.mini_apps]


async def test_register_to_suspension(platform: Platform) -> None:
    _, developer = await platform.developer()
    reviewer_id, reviewer = await platform.reviewer()
    _, user = await platform.person()
    app = (await platform.registered(developer)).mini_app
    version = await platform.uploaded(developer, app.mini_app_id, zip_bundle(good_bundle_files()))
    checked = await _submitted(platform, developer, version.version_id)
    assert (checked.state, checked.manifest_version) == (pb.VERSION_STATE_IN_REVIEW, "1.0.0")
    report = await platform.stub.GetReviewReport(
        pb.GetReviewReportRequest(version_id=version.version_id), metadata=reviewer
    )
    assert (report.report.passed, list(report.report.findings)) == (True, [])
    queue = await platform.stub.ListReviewQueue(pb.ListReviewQueueRequest(), metadata=reviewer)
    assert version.version_id in [v.version_id for v in queue.versions]
    # Nothing is discoverable before it is published.
    assert app.mini_app_id not in await _discover(platform, user)
    approve = pb.ApproveVersionRequest(
        version_id=version.version_id, note="Looks good", request_id=new_id()
    )
    approved = (await platform.stub.ApproveVersion(approve, metadata=reviewer)).version
    assert (approved.state, approved.reviewer_id) == (pb.VERSION_STATE_APPROVED, reviewer_id)
    assert (await platform.stub.ApproveVersion(approve, metadata=reviewer)).version == approved
    published = await platform.stub.PublishVersion(
        pb.PublishVersionRequest(version_id=version.version_id, request_id=new_id()),
        metadata=developer,
    )
    assert published.version.state == pb.VERSION_STATE_PUBLISHED
    assert published.mini_app.published_version_id == version.version_id
    # Any signed-in user now discovers it, by category and by text, and reads its bundle.
    assert await _discover(platform, user) == [app.mini_app_id]
    assert await _discover(platform, user, category=pb.CATEGORY_FINANCE) == [app.mini_app_id]
    assert await _discover(platform, user, category=pb.CATEGORY_FOOD) == []
    assert await _discover(platform, user, query="ELECTRICITY") == [app.mini_app_id]
    assert await _discover(platform, user, query="100%_") == []
    bundle = await platform.stub.GetBundle(
        pb.GetBundleRequest(sha256=version.bundle_sha256), metadata=user
    )
    assert bundle.integrity == version.bundle_integrity
    # A second published version supersedes the first.
    second = await _published(platform, developer, reviewer, app.mini_app_id, "1.1.0")
    first = await platform.stub.GetVersion(
        pb.GetVersionRequest(version_id=version.version_id), metadata=developer
    )
    assert first.version.state == pb.VERSION_STATE_SUPERSEDED
    suspend = pb.SuspendMiniAppRequest(
        mini_app_id=app.mini_app_id, reason="Phishing reports", request_id=new_id()
    )
    suspended = (await platform.stub.SuspendMiniApp(suspend, metadata=reviewer)).mini_app
    assert (suspended.status, suspended.suspend_reason) == (
        pb.MINI_APP_STATUS_SUSPENDED,
        "Phishing reports",
    )
    # Gone from discovery with the suspension's commit; its bundle with it.
    assert await _discover(platform, user) == []
    gone = await failure(
        platform.stub.GetBundle(pb.GetBundleRequest(sha256=second.bundle_sha256), metadata=user)
    )
    assert gone.info.reason == "BUNDLE_NOT_FOUND"
    now = await platform.stub.GetVersion(
        pb.GetVersionRequest(version_id=second.version_id), metadata=developer
    )
    assert now.version.state == pb.VERSION_STATE_SUSPENDED
    blocked = await failure(
        platform.stub.UploadVersion(
            pb.UploadVersionRequest(
                mini_app_id=app.mini_app_id, bundle=zip_bundle(), request_id=new_id()
            ),
            metadata=developer,
        )
    )
    assert (blocked.code, blocked.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "MINI_APP_SUSPENDED",
    )
    # Every transition announced itself.
    moves = [
        events_pb2.VersionStateChanged.FromString(payload)
        for payload in await platform.events("superapp.miniapps.version.state_changed")
    ]
    first_moves = [m.version.state for m in moves if m.version.version_id == version.version_id]
    assert first_moves == [
        pb.VERSION_STATE_SUBMITTED,
        pb.VERSION_STATE_CHECKING,
        pb.VERSION_STATE_IN_REVIEW,
        pb.VERSION_STATE_APPROVED,
        pb.VERSION_STATE_PUBLISHED,
        pb.VERSION_STATE_SUPERSEDED,
    ]
    [event] = await platform.events("superapp.miniapps.mini_app.suspended")
    assert events_pb2.MiniAppSuspended.FromString(event).client_id == app.client_id

    # The way back: a developer cannot reinstate; a reviewer can, and the version that
    # was suspended with it is published again, discoverable with its bundle.
    reinstate = pb.ReinstateMiniAppRequest(
        mini_app_id=app.mini_app_id, note="Reports were false", request_id=new_id()
    )
    denied = await failure(platform.stub.ReinstateMiniApp(reinstate, metadata=developer))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    back = (await platform.stub.ReinstateMiniApp(reinstate, metadata=reviewer)).mini_app
    assert (back.status, back.suspend_reason, back.published_version_id) == (
        pb.MINI_APP_STATUS_ACTIVE,
        "",
        second.version_id,
    )
    # A replay returns the first answer; reinstating an active one changes nothing.
    assert (await platform.stub.ReinstateMiniApp(reinstate, metadata=reviewer)).mini_app == back
    again = pb.ReinstateMiniAppRequest(mini_app_id=app.mini_app_id, request_id=new_id())
    assert (await platform.stub.ReinstateMiniApp(again, metadata=reviewer)).mini_app == back
    assert await _discover(platform, user) == [app.mini_app_id]
    bundle = await platform.stub.GetBundle(
        pb.GetBundleRequest(sha256=second.bundle_sha256), metadata=user
    )
    assert bundle.integrity == second.bundle_integrity
    now = await platform.stub.GetVersion(
        pb.GetVersionRequest(version_id=second.version_id), metadata=developer
    )
    assert now.version.state == pb.VERSION_STATE_PUBLISHED
    [event] = await platform.events("superapp.miniapps.mini_app.reinstated")
    announced = events_pb2.MiniAppReinstated.FromString(event)
    assert (announced.client_id, announced.note, announced.reinstated_by) == (
        app.client_id,
        "Reports were false",
        reviewer_id,
    )
    unknown = await failure(
        platform.stub.ReinstateMiniApp(
            pb.ReinstateMiniAppRequest(mini_app_id=new_id(), request_id=new_id()),
            metadata=reviewer,
        )
    )
    assert unknown.info.reason == "MINI_APP_NOT_FOUND"


async def test_the_checks_reject_a_hostile_version_with_findings(platform: Platform) -> None:
    _, developer = await platform.developer()
    _, reviewer = await platform.reviewer()
    app = (await platform.registered(developer)).mini_app
    hostile = zip_bundle(good_bundle_files(script="var x=1;eval(location.hash.slice(1));\n"))
    version = await platform.uploaded(developer, app.mini_app_id, hostile)
    checked = await _submitted(platform, developer, version.version_id)
    assert checked.state == pb.VERSION_STATE_REJECTED
    registry = platform.service.metrics.registry
    assert registry.get_sample_value("superapp_miniapp_checks_total", {"outcome": "rejected"}) == 1
    assert registry.get_sample_value("superapp_miniapp_check_seconds_count") == 1
    report = (
        await platform.stub.GetReviewReport(
            pb.GetReviewReportRequest(version_id=version.version_id), metadata=developer
        )
    ).report
    assert not report.passed
    assert ("app.js", 1) in {(f.file, f.line) for f in report.findings}
    assert all(f.rule and f.message for f in report.findings)
    # A rejected version is final: no review, no publication.
    refused = await failure(
        platform.stub.ApproveVersion(
            pb.ApproveVersionRequest(version_id=version.version_id, request_id=new_id()),
            metadata=reviewer,
        )
    )
    assert refused.info.metadata["state"] == "VERSION_STATE_REJECTED"
    _, stranger = await platform.developer()
    hidden = await failure(
        platform.stub.GetReviewReport(
            pb.GetReviewReportRequest(version_id=version.version_id), metadata=stranger
        )
    )
    assert hidden.info.reason == "VERSION_NOT_FOUND"
