"""The category tree: look-ups and listings with published-product counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.models import Category, Product
from services.database import Database
from services.runtime.errors import NotFound

__all__ = ["CategoryPage", "CategoryTree", "CategoryView"]

PUBLISHED = "PUBLISHED"


@dataclass(frozen=True, slots=True)
class CategoryView:
    """A category as callers see it, with the published products beneath it counted."""

    category_id: str
    name: str
    parent_category_id: str | None
    product_count: int
    create_time: datetime


@dataclass(frozen=True, slots=True)
class CategoryPage:
    """One page of categories in creation order; `has_more` when another page follows."""

    categories: list[CategoryView]
    has_more: bool


def _not_found(category_id: str) -> NotFound:
    return NotFound(
        "CATEGORY_NOT_FOUND",
        f"category {category_id} does not exist",
        metadata={"category_id": category_id},
    )


class CategoryTree:
    """Reads of the category tree."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, category_id: str) -> CategoryView:
        """One category; NOT_FOUND `CATEGORY_NOT_FOUND` if there is none."""
        async with self._database.read() as session:
            category = await session.get(Category, category_id)
            if category is None:
                raise _not_found(category_id)
            counts = await _published_counts(session, [category_id])
        return _view(category, counts)

    async def list(self, parent_id: str | None, page_size: int, after: str | None) -> CategoryPage:
        """Categories after `after` in creation order: all of them, or `parent_id`'s children."""
        async with self._database.read() as session:
            query = select(Category).order_by(Category.category_id).limit(page_size + 1)
            if parent_id is not None:
                if await session.get(Category, parent_id) is None:
                    raise _not_found(parent_id)
                query = query.where(Category.parent_category_id == parent_id)
            if after is not None:
                query = query.where(Category.category_id > after)
            rows = list((await session.scalars(query)).all())
            page = rows[:page_size]
            counts = await _published_counts(session, [row.category_id for row in page])
        return CategoryPage([_view(row, counts) for row in page], has_more=len(rows) > page_size)


def _view(category: Category, counts: dict[str, int]) -> CategoryView:
    return CategoryView(
        category_id=category.category_id,
        name=category.name,
        parent_category_id=category.parent_category_id,
        product_count=counts.get(category.category_id, 0),
        create_time=category.create_time,
    )


async def _published_counts(session: AsyncSession, roots: Sequence[str]) -> dict[str, int]:
    """Published products in each root category and all its descendants, in one query."""
    if not roots:
        return {}
    tree = (
        select(Category.category_id.label("root_id"), Category.category_id.label("node_id"))
        .where(Category.category_id.in_(roots))
        .cte("tree", recursive=True)
    )
    tree = tree.union_all(
        select(tree.c.root_id, Category.category_id).join(
            tree, Category.parent_category_id == tree.c.node_id
        )
    )
    query = (
        select(tree.c.root_id, func.count(Product.product_id))
        .select_from(tree)
        .outerjoin(Product, (Product.category_id == tree.c.node_id) & (Product.status == PUBLISHED))
        .group_by(tree.c.root_id)
    )
    return {str(root): int(count) for root, count in await session.execute(query)}
