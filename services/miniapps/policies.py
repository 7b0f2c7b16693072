"""Who may call each MiniAppsService RPC (ownership is checked in the domain)."""

from __future__ import annotations

from superapp.miniapps.v1 import miniapps_service_pb2

from services.auth.policy import AUTHENTICATED, ServicePolicies, authenticated
from services.auth.roles import Role

__all__ = ["POLICIES"]

_DEVELOPER = authenticated(Role.DEVELOPER, Role.ADMIN)
_REVIEWER = authenticated(Role.REVIEWER, Role.ADMIN)

POLICIES = ServicePolicies(
    miniapps_service_pb2.DESCRIPTOR.services_by_name["MiniAppsService"],
    {
        "RegisterMiniApp": _DEVELOPER,
        "GetMiniApp": AUTHENTICATED,
        "ListMyMiniApps": _DEVELOPER,
        "RotateClientSecret": _DEVELOPER,
        "UploadVersion": _DEVELOPER,
        "GetVersion": AUTHENTICATED,
        "ListVersions": AUTHENTICATED,
        "GetBundle": AUTHENTICATED,
        "SubmitVersion": _DEVELOPER,
        "GetReviewReport": AUTHENTICATED,
        "ListReviewQueue": _REVIEWER,
        "ApproveVersion": _REVIEWER,
        "RejectVersion": _REVIEWER,
        # A reviewer cannot publish: publishing is the developer's act on their own app.
        "PublishVersion": _DEVELOPER,
        "SuspendMiniApp": _REVIEWER,
        "ReinstateMiniApp": _REVIEWER,
        "ListPublishedMiniApps": AUTHENTICATED,
    },
)
