"""Who may call each WalletService RPC (object-level checks live in the handlers)."""

from __future__ import annotations

from superapp.wallet.v1 import wallet_service_pb2

from services.auth.policy import AUTHENTICATED, ServicePolicies, authenticated
from services.auth.roles import Role

__all__ = ["POLICIES"]

POLICIES = ServicePolicies(
    wallet_service_pb2.DESCRIPTOR.services_by_name["WalletService"],
    {
        "GetWallet": AUTHENTICATED,
        "CreditWallet": authenticated(Role.ADMIN, Role.SYSTEM),
        "CreateTransfer": AUTHENTICATED,
        "CreateHold": AUTHENTICATED,
        "GetHold": AUTHENTICATED,
        "CaptureHold": AUTHENTICATED,
        "VoidHold": AUTHENTICATED,
        "ListTransactions": AUTHENTICATED,
    },
)
