"""Catalogue migrations that carry existing products across: revision 0005 moves what SQLite
searches filter and sort by into `product_search_rows`, revision 0006 stores each
product's message beside its columns. Products written before either read the same after
it, and both can be undone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import insert, text, update
from sqlalchemy.engine import Connection
from superapp.catalogue.v1 import catalogue_service_pb2 as pb

from services.catalogue.messages import product_message
from services.catalogue.models import EVENT_TABLES, Category, Product
from services.catalogue.product_reads import product_select, record_of
from services.catalogue.product_wire import wire_form, wire_schema
from services.catalogue.products import Products
from services.catalogue.search import SearchQuery
from services.database import Database
from services.database.migrations import alembic_config
from services.eventbus import Outbox
from services.runtime.clock import SystemClock
from services.runtime.ids import new_id
from tests.conftest import ROOT

_MIGRATIONS = ROOT / "services" / "catalogue" / "migrations"
_CATEGORIES = Category.__table__
_PRODUCTS = Product.__table__


def _migrate(connection: Connection, direction: str, revision: str) -> None:
    getattr(command, direction)(alembic_config(connection, _MIGRATIONS), revision)


async def _migrated(database: Database, direction: str, revision: str) -> None:
    async with database.write_connection() as connection:
        await connection.run_sync(_migrate, direction, revision)


async def _publish(database: Database, title: str, category_id: str, age: timedelta) -> str:
    product_id, made = new_id(), datetime.now(UTC) - age
    async with database.write_connection() as connection:
        await connection.execute(
            insert(_PRODUCTS).values(
                product_id=product_id,
                merchant_id=new_id(),
                title=title,
                description="",
                price_currency="EUR",
                price_minor=100,
                category_id=category_id,
                attributes={},
                image_urls=[],
                status="PUBLISHED",
                stocked=1,
                reserved=0,
                create_time=made,
                update_time=made,
                publish_time=made,
            )
        )
    return product_id


async def _found(database: Database, query: str, category_id: str | None = None) -> list[str]:
    page = await SearchQuery(database, SystemClock()).page([query], category_id, 10, None)
    titles = []
    for hit in page.hits:
        product = pb.Product()
        hit.product.fill(product)
        titles.append(product.title)
    return titles


async def test_products_indexed_before_0005_are_found_after_it_and_after_undoing_it(
    tmp_path: Path,
) -> None:
    database = Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'catalogue.db'}")
    try:
        await _migrated(database, "upgrade", "0004")
        lamps, desks = new_id(), new_id()
        async with database.write_connection() as connection:
            for category_id, name in ((lamps, "Lamps"), (desks, "Desks")):
                await connection.execute(
                    insert(_CATEGORIES).values(
                        category_id=category_id,
                        name=name,
                        name_key=name.lower(),
                        create_time=datetime.now(UTC),
                    )
                )
        await _publish(database, "Oak lamp", lamps, timedelta(hours=2))
        moved = await _publish(database, "Brass lamp", lamps, timedelta(hours=1))

        await _migrated(database, "upgrade", "head")
        # Equally relevant, so newest first: creation times came across.
        assert await _found(database, "lamp") == ["Brass lamp", "Oak lamp"]
        assert await _found(database, "lamp", lamps) == ["Brass lamp", "Oak lamp"]
        async with database.write_connection() as connection:
            await connection.execute(
                update(_PRODUCTS).where(_PRODUCTS.c.product_id == moved).values(category_id=desks)
            )
        await _publish(database, "Desk lamp", desks, timedelta(0))
        assert await _found(database, "lamp", desks) == ["Desk lamp", "Brass lamp"]
        assert await _found(database, "lamp", lamps) == ["Oak lamp"]

        await _migrated(database, "downgrade", "0004")
        async with database.write_connection() as connection:
            columns = await connection.execute(text("PRAGMA table_info(product_search_rows)"))
            assert [column.name for column in columns] == ["search_rowid", "product_id"]
        await _publish(database, "Floor lamp", lamps, timedelta(0))
        async with database.write_connection() as connection:
            indexed = await connection.execute(text("SELECT count(*) FROM product_search"))
            assert indexed.scalar_one() == 4
    finally:
        await database.dispose()


async def test_products_written_before_0006_get_their_stored_message(tmp_path: Path) -> None:
    database = Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'catalogue.db'}")
    try:
        await _migrated(database, "upgrade", "0005")
        lamps = new_id()
        async with database.write_connection() as connection:
            await connection.execute(
                insert(_CATEGORIES).values(
                    category_id=lamps, name="Lamps", name_key="lamps", create_time=datetime.now(UTC)
                )
            )
        product_id = await _publish(database, "Oak lamp", lamps, timedelta(hours=1))

        await _migrated(database, "upgrade", "head")
        async with database.write_connection() as connection:
            row = (
                await connection.execute(
                    product_select().add_columns(_PRODUCTS.c.wire_form),
                    {"now": datetime.now(UTC)},
                )
            ).one()
        record = record_of(row)
        assert row.wire_form == wire_form(record)
        clock = SystemClock()
        products = Products(database, Outbox(EVENT_TABLES, "superapp.catalogue", clock), clock)
        served = pb.Product()
        await products.get(None, product_id, served)
        assert served == product_message(record)
        assert served.title == "Oak lamp"
        assert served.stock.available_quantity == 1

        await _migrated(database, "downgrade", "0005")
        async with database.write_connection() as connection:
            columns = await connection.execute(text("PRAGMA table_info(products)"))
            assert "wire_form" not in [column.name for column in columns]
    finally:
        await database.dispose()


def test_stored_messages_are_rebuilt_for_the_product_message_of_this_release() -> None:
    # A field added to Product (or to Money, Stock, ...) leaves every stored message
    # without it until a migration rebuilds them; GetProduct and the listings would
    # serve the old shape. The newest revision that rebuilt them records what for.
    scripts = ScriptDirectory(str(_MIGRATIONS))
    recorded = next(
        script.module.wire_schema
        for script in scripts.walk_revisions()  # newest first
        if hasattr(script.module, "wire_schema")
    )
    assert recorded == wire_schema(), (
        "the Product message changed since the stored messages were last rebuilt: add a "
        "migration that calls product_wire.rebuild_wire_forms and sets "
        f"wire_schema = {wire_schema()!r}"
    )
