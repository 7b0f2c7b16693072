"""A catalogue database with many published products, for the catalogue scenarios.

The data is deterministic (a seeded generator): a category tree of 20 roots with 4
children each, and products whose titles, descriptions and attribute values are drawn
from a vocabulary of made-up words, so every word occurs in a few hundred products, as a
real search term would. Rows go in with batched executemany (on SQLite through a plain
sqlite3 connection); the database's own triggers fill the full-text index as they do
for RPCs.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.engine import Connection, make_url

from services.catalogue.models import Category, Product
from services.catalogue.product_wire import wire_form
from services.catalogue.records import ProductRecord
from services.database import open_database
from services.runtime.ids import new_id

__all__ = ["SeededCatalogue", "seed_catalogue"]

_MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "catalogue" / "migrations"
_BATCH = 5_000
_ROOTS, _CHILDREN = 20, 4
Progress = Callable[[int, int], None]
_COLOURS = ["red", "blue", "green", "black", "white", "grey", "yellow", "orange", "purple"]


@dataclass(frozen=True)
class SeededCatalogue:
    """What the scenarios need to know about the seeded data."""

    product_ids: list[str]
    """A sample of published products to read."""
    root_category_ids: list[str]
    """Root categories; each has children, and products in both."""
    words: list[str]
    """Words that occur in the products' text."""


def _vocabulary(chance: random.Random, size: int) -> list[str]:
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(chance.choice(syllables) for _ in range(chance.randint(2, 4))))
    return sorted(words)


def _progress(done: int, total: int) -> None:
    end = "\n" if done == total else ""
    print(
        f"\rbench: seeding catalogue {done:,}/{total:,} products",
        end=end,
        file=sys.stderr,
        flush=True,
    )


def _products(
    chance: random.Random, words: list[str], categories: list[str], count: int
) -> Iterator[dict[str, Any]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    merchants = [new_id() for _ in range(500)]
    for index in range(count):
        moment = start + timedelta(seconds=index)
        euro = chance.random() < 0.1
        row: dict[str, Any] = {
            "product_id": new_id(),
            "merchant_id": chance.choice(merchants),
            "title": " ".join(chance.choice(words) for _ in range(3)).capitalize(),
            "description": " ".join(chance.choice(words) for _ in range(12)) + ".",
            "price_currency": "EUR" if euro else "USD",
            "price_minor": chance.randint(100, 50_000),
            "category_id": chance.choice(categories),
            "attributes": {"colour": chance.choice(_COLOURS), "material": chance.choice(words)},
            "image_urls": [f"https://img.example.com/{index}.jpg"],
            "status": "PUBLISHED",
            "stocked": chance.randint(0, 100),
            "reserved": 0,
            "create_time": moment,
            "update_time": moment,
            "publish_time": moment,
        }
        # Written as the service writes its rows, with the stored message.
        yield {**row, "wire_form": wire_form(ProductRecord(**row))}


def _seed(connection: Connection, count: int, progress: Progress) -> SeededCatalogue:
    """Fill the catalogue through `connection` unless it holds `count` products already;
    what the scenarios need to know about it."""
    chance = random.Random(20261122)  # noqa: S311 - reproducible bench data, not secrets
    words = _vocabulary(chance, 3_000)
    present = connection.execute(select(func.count()).select_from(Product)).scalar_one()
    if present < count:
        roots = [new_id() for _ in range(_ROOTS)]
        tree: list[tuple[str, str | None]] = [(root, None) for root in roots]
        tree += [(new_id(), root) for root in roots for _ in range(_CHILDREN)]
        now = datetime.now(UTC)
        connection.execute(
            insert(Category),
            [
                {
                    "category_id": category_id,
                    "name": f"Category {index}",
                    "name_key": f"category {index}",
                    "parent_category_id": parent,
                    "create_time": now,
                }
                for index, (category_id, parent) in enumerate(tree)
            ],
        )
        rows = _products(chance, words, [node for node, _ in tree], count)
        done = 0
        while batch := list(itertools.islice(rows, _BATCH)):
            connection.execute(insert(Product), batch)
            done += len(batch)
            progress(done, count)
    sample = connection.execute(
        select(Product.product_id).order_by(func.random()).limit(1_000)
    ).scalars()
    product_ids = list(sample)
    root_ids = connection.execute(
        select(Category.category_id).where(Category.parent_category_id.is_(None))
    ).scalars()
    return SeededCatalogue(product_ids, list(root_ids), words)


def _seed_sqlite(database_file: str, count: int, progress: Progress) -> SeededCatalogue:
    engine = create_engine(f"sqlite:///{database_file}")
    try:
        with engine.begin() as connection:
            return _seed(connection, count, progress)
    finally:
        engine.dispose()


async def seed_catalogue(database_url: str, count: int) -> SeededCatalogue:
    """Migrate the catalogue database at `database_url` (SQLite or PostgreSQL) and fill
    it with `count` products, unless it holds that many already (the scenarios share
    one database per run)."""
    database = await open_database(database_url, _MIGRATIONS, setting="bench catalogue")
    database_file = make_url(database_url).database
    if database.dialect == "sqlite" and database_file:
        # A plain sqlite3 connection on a thread: no hop per statement.
        await database.dispose()
        return await asyncio.to_thread(_seed_sqlite, database_file, count, _progress)
    try:
        async with database.write_connection() as connection:
            return await connection.run_sync(_seed, count, _progress)
    finally:
        await database.dispose()
