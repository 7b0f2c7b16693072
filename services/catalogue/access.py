"""Object-level access rules of the catalogue, beyond the per-RPC policies.

A DRAFT or ARCHIVED product exists only for its merchant and admins; to anyone else it
is NOT_FOUND, never PERMISSION_DENIED, so its existence does not leak. The same goes for
a reservation, which exists for the user who made it, admins and system callers.
"""

from __future__ import annotations

from services.auth.caller import Caller
from services.auth.roles import Role
from services.catalogue.records import PUBLISHED
from services.runtime.errors import NotFound, PermissionDenied

__all__ = [
    "check_may_change_product",
    "check_may_see_product",
    "check_may_see_reservation",
    "may_manage",
    "product_not_found",
    "reservation_not_found",
]


def may_manage(caller: Caller | None, merchant_id: str) -> bool:
    """Whether `caller` is the merchant `merchant_id` or an admin."""
    return caller is not None and (caller.user_id == merchant_id or caller.has_role(Role.ADMIN))


def product_not_found(product_id: str) -> NotFound:
    """NOT_FOUND `PRODUCT_NOT_FOUND`: the same answer for missing and hidden products."""
    return NotFound(
        "PRODUCT_NOT_FOUND",
        f"product {product_id} does not exist",
        metadata={"product_id": product_id},
    )


def check_may_see_product(
    caller: Caller | None, product_id: str, merchant_id: str, status: str
) -> None:
    """NOT_FOUND unless the product is PUBLISHED or `caller` manages it."""
    if status != PUBLISHED and not may_manage(caller, merchant_id):
        raise product_not_found(product_id)


def check_may_change_product(
    caller: Caller, product_id: str, merchant_id: str, status: str
) -> None:
    """NOT_FOUND for a product `caller` may not see, PERMISSION_DENIED for one they may
    see (it is PUBLISHED) but do not manage."""
    check_may_see_product(caller, product_id, merchant_id, status)
    if not may_manage(caller, merchant_id):
        raise PermissionDenied(
            "PERMISSION_DENIED",
            "only the product's merchant or an admin may change it",
            metadata={"product_id": product_id},
        )


def check_may_see_reservation(caller: Caller, reservation_id: str, user_id: str) -> None:
    """NOT_FOUND `RESERVATION_NOT_FOUND` unless `caller` made it or is admin or system."""
    if not caller.may_act_for(user_id, system=True):
        raise reservation_not_found(reservation_id)


def reservation_not_found(reservation_id: str) -> NotFound:
    """NOT_FOUND `RESERVATION_NOT_FOUND`: the same answer for missing and hidden ones."""
    return NotFound(
        "RESERVATION_NOT_FOUND",
        f"reservation {reservation_id} does not exist",
        metadata={"reservation_id": reservation_id},
    )
