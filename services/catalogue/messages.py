"""Catalogue records as the contract's messages, for responses and event payloads alike."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from superapp.catalogue.v1 import catalogue_service_pb2 as pb
from superapp.type.v1 import money_pb2

from services.catalogue.records import ProductRecord, ReservationRecord, Stock

__all__ = [
    "product_message",
    "product_status",
    "reservation_message",
    "reservation_status",
    "stock_message",
    "timestamp",
]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(moment: datetime) -> Timestamp:
    """A protobuf Timestamp of an aware datetime (a third of `FromDatetime`'s cost; every
    product carries three)."""
    since = moment - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1_000)


def product_status(status: str) -> pb.ProductStatus.ValueType:
    """The enum value of a stored product status."""
    return pb.ProductStatus.Value(f"PRODUCT_STATUS_{status}")


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
    message = pb.Product(
        product_id=product.product_id,
        merchant_id=product.merchant_id,
        title=product.title,
        description=product.description,
        price=money_pb2.Money(
            currency_code=product.price_currency, amount_minor=product.price_minor
        ),
        category_id=product.category_id or "",
        attributes=product.attributes,
        image_urls=product.image_urls,
        status=product_status(product.status),
        create_time=timestamp(product.create_time),
        update_time=timestamp(product.update_time),
        stock=stock_message(product.stock),
    )
    if product.publish_time is not None:
        message.publish_time.CopyFrom(timestamp(product.publish_time))
    return message


def reservation_message(reservation: ReservationRecord) -> pb.Reservation:
    """The Reservation message of a record (see `ReservationRecord.as_of` for expiry)."""
    message = pb.Reservation(
        reservation_id=reservation.reservation_id,
        product_id=reservation.product_id,
        user_id=reservation.user_id,
        quantity=reservation.quantity,
        status=reservation_status(reservation.status),
        expire_time=timestamp(reservation.expire_time),
        create_time=timestamp(reservation.create_time),
    )
    if reservation.resolve_time is not None:
        message.resolve_time.CopyFrom(timestamp(reservation.resolve_time))
    return message
