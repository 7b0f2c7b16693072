"""Who may call each MiniAppsService RPC (ownership is checked in the domain)."""

from __future__ import annotations

from superapp.miniapps.v1 import miniapps_service_pb2

from services.auth.policy import (
    AUTHENTICATED,
    ServicePolicies,
    authenticated,
    mini_app,
    user_or_mini_app,
)
from services.auth.roles import Role

__all__ = ["POLICIES", "WALLET_PAY"]

WALLET_PAY = "wallet.pay"
"""The permission (OAuth scope) a user grants a mini-app to ask them for payments."""
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
        "SetWebhookEndpoint": _DEVELOPER,
        # A mini-app's backend, for the user its token stands for, within the grant.
        "CreatePaymentRequest": mini_app(WALLET_PAY),
        "GetPaymentRequest": user_or_mini_app(WALLET_PAY),
        # Only the user, with their own token: a mini-app never confirms for them.
        "ConfirmPaymentRequest": AUTHENTICATED,
        "DeclinePaymentRequest": AUTHENTICATED,
    },
)
