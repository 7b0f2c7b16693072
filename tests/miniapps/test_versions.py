"""Versions and bundles over gRPC: upload, content addressing, SRI, access and transitions."""

from __future__ import annotations

import base64
import hashlib

import grpc
from sqlalchemy import func, select
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from services.database import Database
from services.miniapps.bundles import BUNDLE_MAX_BYTES
from services.miniapps.models import BUNDLES
from services.runtime.ids import new_id
from tests.miniapps.conftest import Platform, zip_bundle
from tests.services.rich_errors import failure


async def _bundle_rows(platform: Platform) -> int:
    database = Database.connect(platform.settings.database_url)
    try:
        async with database.read() as session:
            count = await session.scalar(select(func.count()).select_from(BUNDLES))
    finally:
        await database.dispose()
    return int(count or 0)


async def test_uploads_are_content_addressed_with_sri(platform: Platform) -> None:
    _, developer = await platform.developer()
    app = (await platform.registered(developer)).mini_app
    bundle = zip_bundle()
    first = await platform.uploaded(developer, app.mini_app_id, bundle)
    sha384 = base64.b64encode(hashlib.sha384(bundle).digest()).decode()
    assert (first.state, first.bundle_sha256, first.bundle_integrity, first.bundle_size_bytes) == (
        pb.VERSION_STATE_DRAFT,
        hashlib.sha256(bundle).hexdigest(),
        f"sha384-{sha384}",
        len(bundle),
    )
    second = await platform.uploaded(developer, app.mini_app_id, bundle)
    assert second.version_id != first.version_id
    assert second.bundle_sha256 == first.bundle_sha256
    assert await _bundle_rows(platform) == 1  # one row per distinct content
    read = await platform.stub.GetBundle(
        pb.GetBundleRequest(sha256=first.bundle_sha256), metadata=developer
    )
    assert (read.content, read.integrity) == (bundle, first.bundle_integrity)
    listed = await platform.stub.ListVersions(
        pb.ListVersionsRequest(mini_app_id=app.mini_app_id), metadata=developer
    )
    assert [v.version_id for v in listed.versions] == [second.version_id, first.version_id]
    # Unpublished bundles and versions exist for their developer and staff only.
    _, user = await platform.person()
    hidden = await failure(
        platform.stub.GetBundle(pb.GetBundleRequest(sha256=first.bundle_sha256), metadata=user)
    )
    assert (hidden.code, hidden.info.reason) == (grpc.StatusCode.NOT_FOUND, "BUNDLE_NOT_FOUND")
    unseen = await failure(
        platform.stub.GetVersion(pb.GetVersionRequest(version_id=first.version_id), metadata=user)
    )
    assert unseen.info.reason == "VERSION_NOT_FOUND"
    _, reviewer = await platform.reviewer()
    staff = await platform.stub.GetBundle(
        pb.GetBundleRequest(sha256=first.bundle_sha256), metadata=reviewer
    )
    assert staff.content == bundle


async def test_a_large_bundle_within_the_limit_is_accepted(platform: Platform) -> None:
    _, developer = await platform.developer()
    app = (await platform.registered(developer)).mini_app
    # Stored (no compression) random-ish content: about 6 MiB, over gRPC's default 4 MiB.
    blob = hashlib.shake_256(b"assets").hexdigest(3 * 1024 * 1024)
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("manifest.json", "{}")
        archive.writestr("assets/data.txt", blob)
    bundle = buffer.getvalue()
    assert 4 * 1024 * 1024 < len(bundle) <= BUNDLE_MAX_BYTES
    version = await platform.uploaded(developer, app.mini_app_id, bundle)
    read = await platform.stub.GetBundle(
        pb.GetBundleRequest(sha256=version.bundle_sha256), metadata=developer
    )
    assert read.content == bundle


async def test_bad_uploads_are_refused_with_their_reason(platform: Platform) -> None:
    _, developer = await platform.developer()
    app = (await platform.registered(developer)).mini_app

    def upload(bundle: bytes, mini_app_id: str = app.mini_app_id) -> object:
        return platform.stub.UploadVersion(
            pb.UploadVersionRequest(mini_app_id=mini_app_id, bundle=bundle, request_id=new_id()),
            metadata=developer,
        )

    oversize = await failure(upload(b"PK" + b"\0" * BUNDLE_MAX_BYTES))
    assert (oversize.code, oversize.info.reason, oversize.violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "BUNDLE_TOO_LARGE",
        {"bundle": "TOO_LARGE"},
    )
    assert oversize.info.metadata["limit_bytes"] == str(BUNDLE_MAX_BYTES)
    not_zip = await failure(upload(b"<html>not a zip</html>"))
    assert not_zip.violations == {"bundle": "NOT_A_ZIP"}
    empty = await failure(upload(b""))
    assert empty.violations == {"bundle": "REQUIRED"}
    malformed = await failure(upload(zip_bundle(), mini_app_id="nope"))
    assert malformed.violations == {"mini_app_id": "MALFORMED_ID"}
    bad_sha = await failure(
        platform.stub.GetBundle(pb.GetBundleRequest(sha256="ABC"), metadata=developer)
    )
    assert bad_sha.violations == {"sha256": "MALFORMED_SHA256"}
    _, other = await platform.developer()
    foreign = await failure(
        platform.stub.UploadVersion(
            pb.UploadVersionRequest(
                mini_app_id=app.mini_app_id, bundle=zip_bundle(), request_id=new_id()
            ),
            metadata=other,
        )
    )
    assert foreign.info.reason == "MINI_APP_NOT_FOUND"


async def test_invalid_transitions_and_roles(platform: Platform) -> None:
    _, developer = await platform.developer()
    _, reviewer = await platform.reviewer()
    _, user = await platform.person()
    app = (await platform.registered(developer)).mini_app
    version = await platform.uploaded(developer, app.mini_app_id)

    approve = await failure(
        platform.stub.ApproveVersion(
            pb.ApproveVersionRequest(version_id=version.version_id, request_id=new_id()),
            metadata=reviewer,
        )
    )
    assert (approve.code, approve.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_VERSION_STATE",
    )
    assert approve.info.metadata["state"] == "VERSION_STATE_DRAFT"
    assert approve.info.metadata["expected"] == "VERSION_STATE_IN_REVIEW"
    publish = await failure(
        platform.stub.PublishVersion(
            pb.PublishVersionRequest(version_id=version.version_id, request_id=new_id()),
            metadata=developer,
        )
    )
    assert publish.info.reason == "INVALID_VERSION_STATE"
    # A user cannot review, a reviewer cannot publish.
    for call in (
        platform.stub.ApproveVersion(
            pb.ApproveVersionRequest(version_id=version.version_id, request_id=new_id()),
            metadata=user,
        ),
        platform.stub.ListReviewQueue(pb.ListReviewQueueRequest(), metadata=user),
        platform.stub.PublishVersion(
            pb.PublishVersionRequest(version_id=version.version_id, request_id=new_id()),
            metadata=reviewer,
        ),
    ):
        assert (await failure(call)).code == grpc.StatusCode.PERMISSION_DENIED
    early = await failure(
        platform.stub.GetReviewReport(
            pb.GetReviewReportRequest(version_id=version.version_id), metadata=developer
        )
    )
    assert (early.code, early.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "REPORT_NOT_READY",
    )
    submit = pb.SubmitVersionRequest(version_id=version.version_id, request_id=new_id())
    submitted = await platform.stub.SubmitVersion(submit, metadata=developer)
    assert submitted.version.state in (
        pb.VERSION_STATE_SUBMITTED,
        pb.VERSION_STATE_CHECKING,
        pb.VERSION_STATE_IN_REVIEW,
        pb.VERSION_STATE_REJECTED,
    )
    # The same request_id replays; a new one finds the version no longer DRAFT.
    assert (await platform.stub.SubmitVersion(submit, metadata=developer)) == submitted
    twice = await failure(
        platform.stub.SubmitVersion(
            pb.SubmitVersionRequest(version_id=version.version_id, request_id=new_id()),
            metadata=developer,
        )
    )
    assert twice.info.reason == "INVALID_VERSION_STATE"
    rejected = await failure(
        platform.stub.RejectVersion(
            pb.RejectVersionRequest(version_id=version.version_id, reasons=[""], request_id=""),
            metadata=reviewer,
        )
    )
    assert rejected.violations == {"reasons[0]": "REQUIRED", "request_id": "REQUIRED"}


async def test_a_retried_upload_makes_one_version(platform: Platform) -> None:
    _, developer = await platform.developer()
    app = (await platform.registered(developer)).mini_app
    request = pb.UploadVersionRequest(
        mini_app_id=app.mini_app_id, bundle=zip_bundle(), request_id=new_id()
    )
    first = await platform.stub.UploadVersion(request, metadata=developer)
    again = await platform.stub.UploadVersion(request, metadata=developer)
    assert again == first
    listed = await platform.stub.ListVersions(
        pb.ListVersionsRequest(mini_app_id=app.mini_app_id), metadata=developer
    )
    assert [v.version_id for v in listed.versions] == [first.version.version_id]
    other = pb.UploadVersionRequest(
        mini_app_id=app.mini_app_id,
        bundle=zip_bundle({"manifest.json": "{}"}),
        request_id=request.request_id,
    )
    reused = await failure(platform.stub.UploadVersion(other, metadata=developer))
    assert reused.info.reason == "IDEMPOTENCY_KEY_REUSED"
