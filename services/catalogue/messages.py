"""Catalogue records as the contract's messages, for responses and event payloads alike."""

from __future__ import annotations

from superapp.catalogue.v1 import catalogue_service_pb2 as pb

from services.catalogue.records import (
    ARCHIVED,
    DRAFT,
    PUBLISHED,
    ProductRecord,
    ReservationRecord,
    Stock,
)
from services.runtime.proto_time import set_timestamp, to_timestamp

__all__ = [
    "fill_product",
    "fill_stock",
    "product_message",
    "product_status",
    "reservation_message",
    "reservation_status",
    "stock_message",
]


def product_status(status: str) -> pb.ProductStatus.ValueType:
    """The enum value of a stored product status."""
    return _PRODUCT_STATUSES[status]


_PRODUCT_STATUSES = {
    status: pb.ProductStatus.Value(f"PRODUCT_STATUS_{status}")
    for status in (DRAFT, PUBLISHED, ARCHIVED)
}


def reservation_status(status: str) -> pb.ReservationStatus.ValueType:
    """The enum value of a stored reservation status."""
    return pb.ReservationStatus.Value(f"RESERVATION_STATUS_{status}")


def stock_message(stock: Stock) -> pb.Stock:
    """The stock summary message."""
    return pb.Stock(
        stocked_quantity=stock.stocked,
        reserved_quantity=stock.reserved,
        available_quantity=stock.available,
    )


def product_message(product: ProductRecord) -> pb.Product:
    """The Product message, output-only fields included."""
    message = pb.Product()
    fill_product(message, product)
    return message


def fill_product(message: pb.Product, product: ProductRecord) -> None:
    """Fill an empty Product `message`, such as a response's field, in place.

    In place rather than built and copied in: listings and searches fill up to a
    hundred of these per call, and a copy costs about as much as the filling.
    """
    message.product_id = product.product_id
    message.merchant_id = product.merchant_id
    message.title = product.title
    message.description = product.description
    if product.category_id is not None:
        message.category_id = product.category_id
    if product.attributes:
        message.attributes.update(product.attributes)
    if product.image_urls:
        message.image_urls.extend(product.image_urls)
    message.status = _PRODUCT_STATUSES[product.status]
    price = message.price
    price.currency_code = product.price_currency
    price.amount_minor = product.price_minor
    set_timestamp(message.create_time, product.create_time)
    set_timestamp(message.update_time, product.update_time)
    if product.publish_time is not None:
        set_timestamp(message.publish_time, product.publish_time)
    fill_stock(message.stock, product.stock)


def fill_stock(summary: pb.Stock, stock: Stock) -> None:
    """Fill a Stock `summary`, such as a product's field, in place."""
    summary.stocked_quantity = stock.stocked
    summary.reserved_quantity = stock.reserved
    summary.available_quantity = stock.available


def reservation_message(reservation: ReservationRecord) -> pb.Reservation:
    """The Reservation message of a record (see `ReservationRecord.as_of` for expiry)."""
    message = pb.Reservation(
        reservation_id=reservation.reservation_id,
        product_id=reservation.product_id,
        user_id=reservation.user_id,
        quantity=reservation.quantity,
        status=reservation_status(reservation.status),
        expire_time=to_timestamp(reservation.expire_time),
        create_time=to_timestamp(reservation.create_time),
    )
    if reservation.resolve_time is not None:
        message.resolve_time.CopyFrom(to_timestamp(reservation.resolve_time))
    return message
