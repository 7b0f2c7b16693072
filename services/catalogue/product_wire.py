"""Each product's Product message, serialized and stored beside its columns.

GetProduct is the catalogue's hottest read. Built from the columns, it parsed three
timestamps and two JSON documents into a record and copied the record into a message.
Measured in-process, the whole read took 30-32 us that way and 12-13 us merging stored
bytes, with the same response bytes. On one event loop under one GIL that per-request
work is what limits throughput, so the row keeps its message ready.

The stored form leaves out the stock, which changes with every reservation and is
computed as of each read; a read merges the bytes and sets the stock. The columns stay
the truth that listings filter and sort on: the bytes are written from the very record
the columns are written from (`Products`), in the same statement. A trigger clears
them when another writer changes the columns they carry, and rows without them are
read from the columns. A change to what a Product message carries needs a migration
that rebuilds the column with `rebuild_wire_forms` and records, as `wire_schema`, the
`wire_schema()` it rebuilt for; a test fails until the newest such record matches.
A change to how a record fills the message (`messages.fill_product`) needs the same
migration, and no test can notice that one.

Listings and searches serve their pages the same way (`WIRE_COLUMNS`, `stored_products`):
in-process, building a 20-product search page from columns cost about 0.3 ms of its
1.15 ms, and filling the response another 0.125 ms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor
from google.protobuf.descriptor_pb2 import DescriptorProto, EnumDescriptorProto
from sqlalchemy import Connection, Row, bindparam, update
from superapp.catalogue.v1 import catalogue_service_pb2 as pb

from services.catalogue.messages import fill_stock, product_message
from services.catalogue.product_reads import PRODUCTS, RESERVED_NOW, product_select, record_of
from services.catalogue.records import ProductRecord, Stock
from services.database import Database

__all__ = [
    "WIRE_COLUMNS",
    "StoredProduct",
    "fill_from_wire",
    "rebuild_wire_forms",
    "stored_products",
    "wire_form",
    "wire_schema",
]

_REBUILD_BATCH = 1_000
_P = PRODUCTS.c

WIRE_COLUMNS = (_P.product_id, _P.wire_form, _P.stocked, RESERVED_NOW)
"""What a page selects to serve a product (with the bind parameter `now`)."""

_BY_IDS = product_select().where(_P.product_id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True, slots=True)
class StoredProduct:
    """A product as a page serves it: its stored message and its stock as of the read."""

    wire: bytes
    stock: Stock

    def fill(self, message: pb.Product) -> None:
        """Fill an empty `message`, such as a response's field, in place."""
        fill_from_wire(message, self.wire, self.stock)


def wire_form(product: ProductRecord) -> bytes:
    """What to store in `products.wire_form` for `product`: its message without stock."""
    message = product_message(product)
    message.ClearField("stock")
    # Deterministic: the attributes map serializes in one order, so equal products
    # store equal bytes.
    return message.SerializeToString(deterministic=True)


def wire_schema() -> str:
    """A fingerprint of what a stored message can carry: `Product` and every message and
    enum it contains, however deep. It changes with any field added, removed, renamed or
    renumbered there, and with nothing else (comments, request rules, other messages of the
    file)."""
    shapes: dict[str, bytes] = {}
    pending: list[Descriptor | EnumDescriptor] = [pb.Product.DESCRIPTOR]
    while pending:
        descriptor = pending.pop()
        if descriptor.full_name in shapes:
            continue
        if isinstance(descriptor, Descriptor):
            message = DescriptorProto()
            descriptor.CopyToProto(message)
            # The contract's request rules say what a request may hold, not what a
            # stored message can carry.
            for field_proto in message.field:
                field_proto.options.ClearExtension(validate_pb2.field)
                if not field_proto.options.ListFields():
                    field_proto.ClearField("options")
            shape = message.SerializeToString(deterministic=True)
            for field in descriptor.fields:
                pending.extend(t for t in (field.message_type, field.enum_type) if t is not None)
        else:
            enum = EnumDescriptorProto()
            descriptor.CopyToProto(enum)
            shape = enum.SerializeToString(deterministic=True)
        shapes[descriptor.full_name] = shape
    digest = hashlib.sha256()
    for name in sorted(shapes):
        digest.update(name.encode() + b"\0" + shapes[name])
    return digest.hexdigest()[:16]


def fill_from_wire(message: pb.Product, wire: bytes, stock: Stock) -> None:
    """Fill an empty `message` from stored bytes and the stock as of the read."""
    message.MergeFromString(wire)
    fill_stock(message.stock, stock)


def rebuild_wire_forms(connection: Connection) -> None:
    """Write every product's wire form from its columns, in batches (for migrations)."""
    page = product_select().where(_P.product_id > bindparam("after"))
    page = page.order_by(_P.product_id).limit(_REBUILD_BATCH)
    store = update(PRODUCTS).where(_P.product_id == bindparam("key"))
    store = store.values(wire_form=bindparam("form"))
    after = ""
    # The stock is not part of the wire form; any instant serves the read.
    while rows := connection.execute(page, {"after": after, "now": datetime.now(UTC)}).all():
        forms: list[dict[str, Any]] = [
            {"key": row.product_id, "form": wire_form(record_of(row))} for row in rows
        ]
        connection.execute(store, forms)
        after = rows[-1].product_id


async def stored_products(
    database: Database, rows: Sequence[Row[Any]], now: datetime
) -> list[StoredProduct | None]:
    """The products of `rows` (selected with `WIRE_COLUMNS` as of `now`), in order.

    A row some other writer left without its wire form is read again from its columns,
    in one more statement for all such rows of the page; None in its place if that
    writer deleted it in between.
    """
    missing = [row.product_id for row in rows if row.wire_form is None]
    rebuilt: dict[str, bytes] = {}
    if missing:
        for row in await database.scan(_BY_IDS, {"ids": missing, "now": now}):
            rebuilt[row.product_id] = wire_form(record_of(row))
    served: list[StoredProduct | None] = []
    for row in rows:
        wire = row.wire_form if row.wire_form is not None else rebuilt.get(row.product_id)
        stock = Stock(row.stocked, row.reserved)
        served.append(None if wire is None else StoredProduct(wire, stock))
    return served
