"""The hostile-bundle corpus through the service: each bundle uploads, is submitted, and
the checks (off the request path) reject it with its finding in the report. A bundle that
is not a zip or is over the contract's 8 MiB never gets that far: the upload refuses it."""

from __future__ import annotations

import asyncio

from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from services.runtime.ids import new_id
from tests.miniapps.bundles import valid_bundle
from tests.miniapps.conftest import Platform
from tests.miniapps.test_lifecycle import _submitted
from tests.miniapps.test_review_corpus import CASES
from tests.services.rich_errors import failure

THROUGH_THE_SERVICE = [
    "zip-slip",
    "symlink",
    "zip bomb",
    "eval hidden in minified code",
    "new Function",
    "fetch to an undeclared domain",
    "permission outside the catalogue",
    "missing justification",
]


async def test_each_hostile_bundle_is_rejected_with_its_finding(platform: Platform) -> None:
    _, developer = await platform.developer()
    app = (await platform.registered(developer)).mini_app
    uploaded = {
        name: await platform.uploaded(developer, app.mini_app_id, CASES[name].bundle())
        for name in THROUGH_THE_SERVICE
    }
    checked = await asyncio.gather(
        *(_submitted(platform, developer, v.version_id) for v in uploaded.values())
    )
    for (name, version), outcome in zip(uploaded.items(), checked, strict=True):
        assert outcome.state == pb.VERSION_STATE_REJECTED, name
        report = await platform.stub.GetReviewReport(
            pb.GetReviewReportRequest(version_id=version.version_id), metadata=developer
        )
        file, line, rule = CASES[name].expected
        found = {(f.file, f.line, f.rule) for f in report.report.findings}
        assert (file, line(), rule) in found, (name, found)
    good = await platform.uploaded(developer, app.mini_app_id, valid_bundle())
    assert (await _submitted(platform, developer, good.version_id)).state == (
        pb.VERSION_STATE_IN_REVIEW
    )


async def test_not_a_zip_is_refused_at_upload(platform: Platform) -> None:
    _, developer = await platform.developer()
    app = (await platform.registered(developer)).mini_app
    refused = await failure(
        platform.stub.UploadVersion(
            pb.UploadVersionRequest(
                mini_app_id=app.mini_app_id,
                bundle=CASES["not a zip"].bundle(),
                request_id=new_id(),
            ),
            metadata=developer,
        )
    )
    assert refused.violations == {"bundle": "NOT_A_ZIP"}
