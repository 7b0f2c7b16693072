"""What developers and reviewers both read: a version with its checks' report."""

from __future__ import annotations

import grpc
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from bff import conversions, schemas
from bff.authentication import Principal
from bff.upstreams import Upstreams
from services.runtime.status_details import StatusDetails

__all__ = ["version_with_report"]


async def version_with_report(
    upstreams: Upstreams, principal: Principal, version_id: str
) -> schemas.VersionWithReport:
    """The version, and its report once the checks have finished (null before)."""
    version = await upstreams.miniapps.GetVersion(
        pb.GetVersionRequest(version_id=version_id), metadata=principal.metadata
    )
    try:
        reply = await upstreams.miniapps.GetReviewReport(
            pb.GetReviewReportRequest(version_id=version_id), metadata=principal.metadata
        )
    except grpc.aio.AioRpcError as error:
        info = StatusDetails.of(error).error_info
        if info is None or info.reason != "REPORT_NOT_READY":
            raise
        report = None
    else:
        report = conversions.review_report(reply.report)
    return schemas.VersionWithReport(version=conversions.version(version.version), report=report)
