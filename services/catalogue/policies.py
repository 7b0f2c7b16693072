"""Who may call each CatalogueService RPC (object-level checks live in the handlers)."""

from __future__ import annotations

from superapp.catalogue.v1 import catalogue_service_pb2

from services.auth.policy import AUTHENTICATED, PUBLIC, ServicePolicies, authenticated
from services.auth.roles import Role

__all__ = ["POLICIES"]

POLICIES = ServicePolicies(
    catalogue_service_pb2.DESCRIPTOR.services_by_name["CatalogueService"],
    {
        "CreateProduct": authenticated(Role.MERCHANT, Role.ADMIN),
        "GetProduct": PUBLIC,
        "UpdateProduct": AUTHENTICATED,
        "PublishProduct": AUTHENTICATED,
        "ArchiveProduct": AUTHENTICATED,
        "ListProducts": PUBLIC,
        "SearchProducts": PUBLIC,
        "CreateCategory": authenticated(Role.ADMIN),
        "GetCategory": PUBLIC,
        "ListCategories": PUBLIC,
        "ReserveStock": AUTHENTICATED,
        "CommitReservation": AUTHENTICATED,
        "ReleaseReservation": AUTHENTICATED,
        "GetReservation": AUTHENTICATED,
        "AdjustStock": AUTHENTICATED,
    },
)
