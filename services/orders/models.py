"""Orders' tables: the orders (with the saga's state and its lease) and their steps.

An order row is the saga's durable state: what to do next (`next_step`), what it holds
upstream (`reservation_id`, `hold_id`), which attempt it is on, and who is driving it
(`lease_owner` until `lease_expire_time`). Every state change is a conditional UPDATE on
the lease, so a replica that lost its lease can change nothing.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase

from services.database.schema import UtcDateTime, new_metadata
from services.database.service_secrets import service_secrets_table
from services.eventbus.schema import EventTables, event_tables

__all__ = ["EVENT_TABLES", "FIRST_PURCHASES", "ORDERS", "ORDER_STEPS", "SERVICE_SECRETS", "Base"]


class Base(DeclarativeBase):
    """Declarative base of orders' own tables."""

    metadata = new_metadata()


EVENT_TABLES: EventTables = event_tables(Base.metadata)
SERVICE_SECRETS = service_secrets_table(Base.metadata)
"""The event bus's outbox and inbox, in this service's own database."""

ORDERS = Table(
    "orders",
    Base.metadata,
    Column("order_id", String(36), primary_key=True),
    Column("buyer_id", String(36), nullable=False),
    # The buyer's idempotency key and a digest of what it asked for.
    Column("request_id", String(128), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("merchant_id", String(36), nullable=False),
    Column("product_id", String(36), nullable=False),
    Column("title", String(200), nullable=False),
    Column("quantity", Integer(), nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("unit_price_minor", BigInteger(), nullable=False),
    Column("total_minor", BigInteger(), nullable=False),
    # pending, payment_pending, completed, cancelled, reversed.
    Column("status", String(16), nullable=False),
    # What the saga does next (a step name), empty once the order is terminal.
    Column("next_step", String(16), nullable=False),
    Column("attempt", SmallInteger(), nullable=False),
    # Holds placed for the current attempt, counting from 1 (a new one for each expiry).
    Column("collections", SmallInteger(), nullable=False),
    # The last forward step of the attempt that was asked of a peer (its outcome may
    # be unknown): compensation undoes only what may have happened.
    Column("reached", String(16), nullable=False),
    Column("failure_reason", String(64), nullable=False),
    Column("failure_step", String(16), nullable=False),
    Column("reservation_id", String(36), nullable=True),
    Column("hold_id", String(36), nullable=True),
    Column("transaction_id", String(36), nullable=True),
    Column("lease_owner", String(36), nullable=True),
    Column("lease_expire_time", UtcDateTime(), nullable=True),
    # When the reconciler may next try the order, and how many tries in a row failed.
    Column("retry_time", UtcDateTime(), nullable=False),
    Column("retries", Integer(), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("update_time", UtcDateTime(), nullable=False),
    # product or payment (see services/orders/order_kinds.py). A payment order has no
    # product: product_id and title are empty, quantity 1, unit_price_minor its amount.
    Column("kind", String(16), nullable=False, server_default="product"),
    # What a payment order pays for, and where it came from; empty or NULL otherwise.
    Column("description", String(200), nullable=False, server_default=""),
    Column("mini_app_id", String(36), nullable=True),
    Column("payment_request_id", String(36), nullable=True),
    # One key space per buyer for both kinds: a payment's key is owned by its buyer.
    UniqueConstraint("buyer_id", "request_id"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("total_minor > 0", name="total_positive"),
    # A buyer's orders and a merchant's sales, newest first (order ids are UUIDv7).
    Index("ix_orders_buyer_id_order_id", "buyer_id", "order_id"),
    Index("ix_orders_merchant_id_order_id", "merchant_id", "order_id"),
    # The reconciler: unfinished orders by when they are due.
    Index("ix_orders_status_retry_time", "status", "retry_time"),
)

ORDER_STEPS = Table(
    "order_steps",
    Base.metadata,
    Column("order_id", ForeignKey("orders.order_id"), nullable=False),
    Column("seq", Integer(), nullable=False),
    Column("attempt", SmallInteger(), nullable=False),
    Column("name", String(16), nullable=False),
    # succeeded, failed or interrupted.
    Column("outcome", String(16), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("time", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("order_id", "seq"),
)

FIRST_PURCHASES = Table(
    "first_purchases",
    Base.metadata,
    # One row per buyer, inserted (if absent) by the transaction that completes an
    # order: the insert that creates it decides the buyer's first purchase.
    Column("buyer_id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
)
