"""What CatalogueService requests must satisfy beyond their contract rules, and the
domain values they become.

The limits of each field (lengths, ids, ranges, currencies, statuses) are the rules in
`catalogue_service.proto`, checked for every RPC before its handler runs. What a rule
cannot say is checked here and reported with them in one INVALID_ARGUMENT: an update's
mask (which decides which of the product's rules count), an image URL's host, and the
price bounds of a listing against each other. The handlers then only convert.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Collection
from datetime import timedelta

from superapp.catalogue.v1 import catalogue_service_pb2 as pb

from services.catalogue.listing import ProductFilter, ProductOrder
from services.catalogue.records import MUTABLE_PATHS, PUBLISHED, ProductFields
from services.runtime.contract_rules import ContractRules, RequestChecks, id_violation
from services.runtime.validation import RequestCheck

__all__ = [
    "DEFAULT_TTL",
    "REQUEST_CHECKS",
    "product_fields",
    "product_filter",
    "reservation_ttl",
    "update_paths",
]

DEFAULT_TTL = timedelta(minutes=15)
_OUTPUT_ONLY_PATHS = frozenset(
    {"product_id", "merchant_id", "status", "create_time", "update_time", "publish_time", "stock"}
)
_ORDERS = {
    pb.PRODUCT_ORDER_BY_UNSPECIFIED: ProductOrder.NEWEST,
    pb.PRODUCT_ORDER_BY_NEWEST: ProductOrder.NEWEST,
    pb.PRODUCT_ORDER_BY_PRICE_ASCENDING: ProductOrder.PRICE_ASCENDING,
    pb.PRODUCT_ORDER_BY_PRICE_DESCENDING: ProductOrder.PRICE_DESCENDING,
}


def _image_hosts(check: RequestCheck, field: str, urls: Collection[str]) -> None:
    """The contract's rule says `https://`; that a host follows is urllib's to say."""
    for index, url in enumerate(urls):
        where = f"{field}[{index}]"
        if check.failed(where):
            continue
        try:
            parsed = urllib.parse.urlsplit(url) if url.isprintable() and " " not in url else None
            host = parsed.hostname if parsed is not None else None
        except ValueError:  # an unbalanced IPv6 bracket, say
            host = None
        if not host:
            check.fail(where, "must be an absolute https:// URL", "INVALID_URL")


def _check_create(request: pb.CreateProductRequest, check: RequestCheck, _: ContractRules) -> None:
    _image_hosts(check, "product.image_urls", request.product.image_urls)


def _check_update(
    request: pb.UpdateProductRequest, check: RequestCheck, rules: ContractRules
) -> None:
    """The mask names the fields that change, so only their rules count: the contract
    tells protovalidate to skip `product`, and its rules are applied here, by the mask."""
    if not request.HasField("product"):
        check.fail("product", "is required", "REQUIRED")
    if violation := id_violation("product.product_id", request.product.product_id):
        check.violations.append(violation)
    paths = list(request.update_mask.paths)
    if not paths:
        check.fail("update_mask", "must name at least one field", "REQUIRED")
    for path in paths:
        if path in _OUTPUT_ONLY_PATHS:
            check.fail("update_mask", f"{path} is output only", "OUTPUT_ONLY_FIELD")
        elif path not in MUTABLE_PATHS:
            check.fail("update_mask", f"{path!r} is not an updatable field", "UNKNOWN_FIELD")
    named = update_paths(paths)
    check.extend(rules.violations_of(request.product, at="product", fields=named))
    if "image_urls" in named:
        _image_hosts(check, "product.image_urls", request.product.image_urls)


def _check_listing(request: pb.ListProductsRequest, check: RequestCheck, _: ContractRules) -> None:
    """Each price bound is the contract's to check; the two against each other are not."""
    if request.HasField("min_price") and request.HasField("max_price"):
        low, high = request.min_price, request.max_price
        if low.currency_code != high.currency_code:
            check.fail(
                "max_price.currency_code", "must be the currency of min_price", "CURRENCY_MISMATCH"
            )
        elif low.amount_minor > high.amount_minor:
            check.fail("max_price.amount_minor", "may not be below min_price", "OUT_OF_RANGE")


REQUEST_CHECKS = RequestChecks(
    pb.DESCRIPTOR.services_by_name["CatalogueService"],
    {
        "CreateProduct": _check_create,
        "UpdateProduct": _check_update,
        "ListProducts": _check_listing,
    },
)


def product_fields(product: pb.Product) -> ProductFields:
    """The merchant-set fields of `product`; the title without surrounding whitespace."""
    return ProductFields(
        title=product.title.strip(),
        description=product.description,
        price_currency=product.price.currency_code,
        price_minor=product.price.amount_minor,
        category_id=product.category_id or None,
        attributes=dict(product.attributes),
        image_urls=list(product.image_urls),
    )


def update_paths(paths: Collection[str]) -> list[str]:
    """The updatable fields `paths` names, in the order events list them."""
    return [path for path in MUTABLE_PATHS if path in paths]


def product_filter(request: pb.ListProductsRequest) -> ProductFilter:
    """The filters and order of a ListProducts request."""
    has_min, has_max = request.HasField("min_price"), request.HasField("max_price")
    statuses = {
        pb.ProductStatus.Name(status).removeprefix("PRODUCT_STATUS_") for status in request.statuses
    }
    currency = None
    if has_min or has_max:
        currency = (request.min_price if has_min else request.max_price).currency_code
    return ProductFilter(
        category_id=request.category_id or None,
        merchant_id=request.merchant_id or None,
        currency=currency,
        min_price_minor=request.min_price.amount_minor if has_min else None,
        max_price_minor=request.max_price.amount_minor if has_max else None,
        statuses=tuple(sorted(statuses or {PUBLISHED})),
        order=_ORDERS[request.order_by],
    )


def reservation_ttl(request: pb.ReserveStockRequest) -> timedelta:
    """How long a reservation holds: the request's ttl (the contract bounds it: positive,
    at most 1 hour), 15 minutes unless set."""
    return request.ttl.ToTimedelta() if request.HasField("ttl") else DEFAULT_TTL
