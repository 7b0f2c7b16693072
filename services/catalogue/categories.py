"""The category tree: look-ups and listings with published-product counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.models import Category
from services.database import Database
from services.runtime.clock import Clock
from services.runtime.errors import AlreadyExists, NotFound
from services.runtime.ids import new_id

__all__ = [
    "CategoryPage",
    "CategoryTree",
    "CategoryView",
    "category_exists",
    "require_category",
    "subtree_ids",
]


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


_CATEGORY_ID = select(Category.category_id).where(Category.category_id == bindparam("category_id"))


def subtree_ids() -> Select[Any]:
    """The ids of the category `:category_id` and all its descendants (a recursive CTE)."""
    tree = (
        select(Category.category_id.label("node_id"))
        .where(Category.category_id == bindparam("category_id"))
        .cte("subtree", recursive=True)
    )
    tree = tree.union_all(
        select(Category.category_id).join(tree, Category.parent_category_id == tree.c.node_id)
    )
    return select(tree.c.node_id)


async def category_exists(database: Database, category_id: str) -> None:
    """NOT_FOUND `CATEGORY_NOT_FOUND` unless the category exists (a point read)."""
    if not await database.lookup(_CATEGORY_ID, {"category_id": category_id}):
        raise _not_found(category_id)


async def require_category(session: AsyncSession, category_id: str) -> None:
    """NOT_FOUND `CATEGORY_NOT_FOUND` unless the category exists."""
    if await session.get(Category, category_id) is None:
        raise _not_found(category_id)


def _name_taken(name: str, parent_id: str | None, existing_id: str) -> AlreadyExists:
    return AlreadyExists(
        "CATEGORY_NAME_TAKEN",
        f"a category named {name!r} exists already under this parent",
        metadata={
            "name": name,
            "parent_category_id": parent_id or "",
            "category_id": existing_id,
        },
    )


class CategoryTree:
    """The category tree: admins add nodes, everyone reads them with their counts."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    async def create(self, session: AsyncSession, name: str, parent_id: str | None) -> CategoryView:
        """A new category under `parent_id` (a root when None); names are unique among
        siblings, compared case-insensitively."""
        if parent_id is not None:
            await require_category(session, parent_id)
        key = name.lower()
        siblings = select(Category.category_id).where(Category.name_key == key)
        if parent_id is None:
            siblings = siblings.where(Category.parent_category_id.is_(None))
        else:
            siblings = siblings.where(Category.parent_category_id == parent_id)
        if (existing := await session.scalar(siblings)) is not None:
            raise _name_taken(name, parent_id, existing)
        category = Category(
            category_id=new_id(),
            name=name,
            name_key=key,
            parent_category_id=parent_id,
            create_time=self._clock.now(),
        )
        try:
            # A savepoint, so that losing a race on PostgreSQL leaves the transaction
            # usable for finding the sibling that won.
            async with session.begin_nested():
                session.add(category)
        except IntegrityError:
            winner = await session.scalar(siblings)
            if winner is None:
                raise
            raise _name_taken(name, parent_id, winner) from None
        return _view(category, {})

    async def get(self, category_id: str) -> CategoryView:
        """One category; NOT_FOUND `CATEGORY_NOT_FOUND` if there is none."""
        rows = await self._database.lookup(_BY_ID, {"category_id": category_id})
        if not rows:
            raise _not_found(category_id)
        counts = await _published_counts(self._database, _COUNT_ONE, {"category_id": category_id})
        return _view(rows[0], counts)

    async def list(self, parent_id: str | None, page_size: int, after: str | None) -> CategoryPage:
        """Categories after `after` in creation order: all of them, or `parent_id`'s children."""
        if parent_id is not None:
            await category_exists(self._database, parent_id)
        parameters = {"parent_id": parent_id, "after": after, "limit": page_size + 1}
        shape = (parent_id is not None, after is not None)
        rows = await self._database.scan(_PAGES[shape], parameters)
        page = rows[:page_size]
        counts = {}
        if page:
            # Counted for the same page of ids, so no list of them travels as a
            # parameter (an expanding IN would miss the compiled fast path).
            counts = await _published_counts(self._database, _COUNT_PAGES[shape], parameters)
        return CategoryPage([_view(row, counts) for row in page], has_more=len(rows) > page_size)


def _view(category: Any, counts: dict[str, int]) -> CategoryView:
    return CategoryView(
        category_id=category.category_id,
        name=category.name,
        parent_category_id=category.parent_category_id,
        product_count=counts.get(category.category_id, 0),
        create_time=category.create_time,
    )


_C = Category.__table__.c
_CATEGORY_COLUMNS = select(_C.category_id, _C.name, _C.parent_category_id, _C.create_time)
_BY_ID = _CATEGORY_COLUMNS.where(_C.category_id == bindparam("category_id"))


def _page_statement(by_parent: bool, resumes: bool, columns: Select[Any]) -> Select[Any]:
    statement = columns.order_by(Category.category_id).limit(bindparam("limit"))
    if by_parent:
        statement = statement.where(Category.parent_category_id == bindparam("parent_id"))
    if resumes:
        statement = statement.where(Category.category_id > bindparam("after"))
    return statement


def _counts_statement(roots: Select[Any]) -> Select[Any]:
    """Published products in each category `roots` selects and all its descendants.

    Each category keeps the count of its own published products (see the model), so this
    walks the category tree only, however many products there are.
    """
    seeds = roots.subquery("roots")
    tree = select(seeds.c.category_id.label("root_id"), seeds.c.category_id.label("node_id")).cte(
        "tree", recursive=True
    )
    tree = tree.union_all(
        select(tree.c.root_id, Category.category_id).join(
            tree, Category.parent_category_id == tree.c.node_id
        )
    )
    return (
        select(tree.c.root_id, func.sum(Category.published_products).label("products"))
        .join_from(tree, Category, Category.category_id == tree.c.node_id)
        .group_by(tree.c.root_id)
    )


_SHAPES = [(by_parent, resumes) for by_parent in (False, True) for resumes in (False, True)]
_PAGES = {shape: _page_statement(*shape, _CATEGORY_COLUMNS) for shape in _SHAPES}
_COUNT_PAGES = {
    shape: _counts_statement(_page_statement(*shape, select(_C.category_id))) for shape in _SHAPES
}
_COUNT_ONE = _counts_statement(
    select(_C.category_id).where(_C.category_id == bindparam("category_id"))
)


async def _published_counts(
    database: Database, statement: Select[Any], parameters: dict[str, Any]
) -> dict[str, int]:
    rows = await database.scan(statement, parameters)
    return {str(row.root_id): int(row.products) for row in rows}
