"""Who may call each OrdersService RPC (object-level checks live in the handlers)."""

from __future__ import annotations

from superapp.orders.v1 import orders_service_pb2

from services.auth.policy import AUTHENTICATED, ServicePolicies, authenticated
from services.auth.roles import Role

__all__ = ["POLICIES"]

POLICIES = ServicePolicies(
    orders_service_pb2.DESCRIPTOR.services_by_name["OrdersService"],
    {
        "CreateOrder": AUTHENTICATED,
        "GetOrder": AUTHENTICATED,
        "ListOrders": AUTHENTICATED,
        "ListMerchantOrders": AUTHENTICATED,
        # The miniapps service, for a user who confirmed a payment request: it moves
        # the buyer's money, so no user may call it for themself or for another.
        "CreatePaymentOrder": authenticated(Role.SYSTEM),
    },
)
