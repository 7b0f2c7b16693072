"""The limits of CatalogueService requests, checked and turned into domain values.

Every function records each bad field on a `RequestCheck` (so one reply names them all)
and returns the cleaned value; the servicer calls `check.done()` before acting.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Collection
from datetime import timedelta

from superapp.catalogue.v1 import catalogue_service_pb2 as pb
from superapp.type.v1 import money_pb2

from services.catalogue.listing import ProductFilter, ProductOrder
from services.catalogue.records import MUTABLE_PATHS, PUBLISHED, ProductFields
from services.runtime.validation import RequestCheck

__all__ = [
    "DEFAULT_TTL",
    "category_name",
    "product_fields",
    "product_filter",
    "quantity",
    "reservation_ttl",
    "search_query",
    "stock_delta",
    "stock_reason",
    "update_paths",
]

TITLE_MAX = 200
DESCRIPTION_MAX = 5000
ATTRIBUTES_MAX = 50
ATTRIBUTE_KEY_MAX = 64
ATTRIBUTE_VALUE_MAX = 256
IMAGES_MAX = 10
IMAGE_URL_MAX = 2048
CATEGORY_NAME_MAX = 100
QUERY_MAX = 200
QUANTITY_MAX = 1000
DEFAULT_TTL = timedelta(minutes=15)
TTL_MAX = timedelta(hours=1)
DELTA_MAX = 1_000_000_000
REASON_MAX = 500
_OUTPUT_ONLY_PATHS = frozenset(
    {"product_id", "merchant_id", "status", "create_time", "update_time", "publish_time", "stock"}
)
_ORDERS = {
    pb.PRODUCT_ORDER_BY_UNSPECIFIED: ProductOrder.NEWEST,
    pb.PRODUCT_ORDER_BY_NEWEST: ProductOrder.NEWEST,
    pb.PRODUCT_ORDER_BY_PRICE_ASCENDING: ProductOrder.PRICE_ASCENDING,
    pb.PRODUCT_ORDER_BY_PRICE_DESCENDING: ProductOrder.PRICE_DESCENDING,
}


def _trimmed_name(check: RequestCheck, field: str, value: str, max_length: int) -> str:
    """A display name: trimmed, then 1 to `max_length` characters."""
    trimmed = value.strip()
    if not trimmed:
        check.fail(field, "is required and may not be only whitespace", "REQUIRED")
    else:
        check.text(field, trimmed, max_length=max_length)
    return trimmed


def _price(check: RequestCheck, field: str, product: pb.Product) -> tuple[str, int]:
    if not product.HasField("price"):
        check.fail(field, "is required", "REQUIRED")
        return "", 0
    check.currency(f"{field}.currency_code", product.price.currency_code)
    check.positive_amount(f"{field}.amount_minor", product.price.amount_minor)
    return product.price.currency_code, product.price.amount_minor


def _attributes(check: RequestCheck, field: str, attributes: dict[str, str]) -> dict[str, str]:
    if len(attributes) > ATTRIBUTES_MAX:
        check.fail(field, f"may have at most {ATTRIBUTES_MAX} entries", "TOO_MANY")
    for key, value in attributes.items():
        if not key or len(key) > ATTRIBUTE_KEY_MAX:
            check.fail(field, f"key {key!r} must be 1 to {ATTRIBUTE_KEY_MAX} characters", "KEY")
        if len(value) > ATTRIBUTE_VALUE_MAX:
            check.fail(
                field, f"value of {key!r} must be at most {ATTRIBUTE_VALUE_MAX} characters", "VALUE"
            )
    return dict(attributes)


def _image_urls(check: RequestCheck, field: str, urls: list[str]) -> list[str]:
    if len(urls) > IMAGES_MAX:
        check.fail(field, f"may have at most {IMAGES_MAX} entries", "TOO_MANY")
    for index, url in enumerate(urls):
        where = f"{field}[{index}]"
        if len(url) > IMAGE_URL_MAX:
            check.fail(where, f"must be at most {IMAGE_URL_MAX} characters", "TOO_LONG")
            continue
        parsed = urllib.parse.urlsplit(url) if url.isprintable() and " " not in url else None
        if parsed is None or parsed.scheme != "https" or not parsed.hostname:
            check.fail(where, "must be an absolute https:// URL", "INVALID_URL")
    return list(urls)


def product_fields(
    check: RequestCheck, product: pb.Product, paths: Collection[str] = MUTABLE_PATHS
) -> ProductFields:
    """The merchant-set fields of `product`, checking those named in `paths`."""
    title = product.title.strip()
    if "title" in paths:
        title = _trimmed_name(check, "product.title", product.title, TITLE_MAX)
    if "description" in paths:
        check.text("product.description", product.description, max_length=DESCRIPTION_MAX)
    currency, amount = product.price.currency_code, product.price.amount_minor
    if "price" in paths:
        currency, amount = _price(check, "product.price", product)
    if "category_id" in paths:
        check.uuid("product.category_id", product.category_id, required=False)
    attributes = dict(product.attributes)
    if "attributes" in paths:
        attributes = _attributes(check, "product.attributes", attributes)
    image_urls = list(product.image_urls)
    if "image_urls" in paths:
        image_urls = _image_urls(check, "product.image_urls", image_urls)
    return ProductFields(
        title=title,
        description=product.description,
        price_currency=currency,
        price_minor=amount,
        category_id=product.category_id or None,
        attributes=attributes,
        image_urls=image_urls,
    )


def update_paths(check: RequestCheck, paths: Collection[str]) -> list[str]:
    """The mask's paths; each must be one of the product fields a merchant sets."""
    if not paths:
        check.fail("update_mask", "must name at least one field", "REQUIRED")
    for path in paths:
        if path in _OUTPUT_ONLY_PATHS:
            check.fail("update_mask", f"{path} is output only", "OUTPUT_ONLY_FIELD")
        elif path not in MUTABLE_PATHS:
            check.fail("update_mask", f"{path!r} is not an updatable field", "UNKNOWN_FIELD")
    return [path for path in MUTABLE_PATHS if path in paths]


def _price_bound(check: RequestCheck, field: str, bound: money_pb2.Money) -> None:
    check.currency(f"{field}.currency_code", bound.currency_code)
    if bound.amount_minor < 0:
        check.fail(f"{field}.amount_minor", "may not be negative", "OUT_OF_RANGE")


def product_filter(check: RequestCheck, request: pb.ListProductsRequest) -> ProductFilter:
    """The filters and order of a ListProducts request."""
    check.uuid("category_id", request.category_id, required=False)
    check.uuid("merchant_id", request.merchant_id, required=False)
    has_min, has_max = request.HasField("min_price"), request.HasField("max_price")
    if has_min:
        _price_bound(check, "min_price", request.min_price)
    if has_max:
        _price_bound(check, "max_price", request.max_price)
    if has_min and has_max:
        if request.min_price.currency_code != request.max_price.currency_code:
            check.fail(
                "max_price.currency_code", "must be the currency of min_price", "CURRENCY_MISMATCH"
            )
        elif request.min_price.amount_minor > request.max_price.amount_minor:
            check.fail("max_price.amount_minor", "may not be below min_price", "OUT_OF_RANGE")
    statuses = {PUBLISHED} if not request.statuses else set()
    for index, status in enumerate(request.statuses):
        check.enum(f"statuses[{index}]", status, pb.ProductStatus, required=True)
        if status in pb.ProductStatus.values() and status:
            statuses.add(pb.ProductStatus.Name(status).removeprefix("PRODUCT_STATUS_"))
    check.enum("order_by", request.order_by, pb.ProductOrderBy, required=False)
    currency = None
    if has_min or has_max:
        currency = (request.min_price if has_min else request.max_price).currency_code
    return ProductFilter(
        category_id=request.category_id or None,
        merchant_id=request.merchant_id or None,
        currency=currency,
        min_price_minor=request.min_price.amount_minor if has_min else None,
        max_price_minor=request.max_price.amount_minor if has_max else None,
        statuses=tuple(sorted(statuses)),
        order=_ORDERS.get(request.order_by, ProductOrder.NEWEST),
    )


def search_query(check: RequestCheck, query: str) -> str:
    """The plain-text query: 1 to 200 characters, not only whitespace."""
    if not query.strip():
        check.fail("query", "is required and may not be only whitespace", "REQUIRED")
    elif len(query) > QUERY_MAX:
        check.fail("query", f"must be at most {QUERY_MAX} characters", "TOO_LONG")
    return query


def category_name(check: RequestCheck, name: str) -> str:
    """A category's name, trimmed: 1 to 100 characters."""
    return _trimmed_name(check, "category.name", name, CATEGORY_NAME_MAX)


def quantity(check: RequestCheck, value: int) -> int:
    """Units of one reservation: 1 to 1000."""
    if not 1 <= value <= QUANTITY_MAX:
        check.fail("quantity", f"must be from 1 to {QUANTITY_MAX}", "OUT_OF_RANGE")
    return value


def reservation_ttl(check: RequestCheck, request: pb.ReserveStockRequest) -> timedelta:
    """How long a reservation holds: 15 minutes unless set; positive and at most 1 hour."""
    if not request.HasField("ttl"):
        return DEFAULT_TTL
    ttl = request.ttl
    # A Duration's seconds and nanos must not disagree in sign.
    valid = abs(ttl.nanos) < 1_000_000_000 and not (ttl.seconds * ttl.nanos < 0)
    duration = ttl.ToTimedelta() if valid else timedelta(0)
    if not timedelta(0) < duration <= TTL_MAX:
        check.fail("ttl", "must be positive and at most 1 hour", "OUT_OF_RANGE")
    return duration


def stock_delta(check: RequestCheck, delta: int) -> int:
    """A stock change: non-zero, at most a billion units either way."""
    if delta == 0 or abs(delta) > DELTA_MAX:
        check.fail("delta", f"must be non-zero and within +/-{DELTA_MAX:,}", "OUT_OF_RANGE")
    return delta


def stock_reason(check: RequestCheck, reason: str) -> str:
    """Why the stock changes: 1 to 500 characters."""
    check.required_text("reason", reason, max_length=REASON_MAX)
    return reason
