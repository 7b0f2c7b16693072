"""SearchProducts: plain-text search over published products, ranked, one contract on
both backends (FTS5 on SQLite, tsvector + GIN on PostgreSQL; see migrations 0003 and 0005).

User text is never query syntax. The query is split into terms here, at every character
that is not a letter or a digit, and the backend's query is assembled from those terms
alone, each quoted (FTS5) or bare alphanumerics (tsquery), so quotes, operators, column
filters and SQL fragments can only ever be searched for as words. The assembled query
travels as a bind parameter.

Ranking comes in tiers, as the contract orders them:

    3  a term in the title, every term a whole word somewhere
    2  a term in the title, some term only as a prefix
    1  no term in the title, every term a whole word
    0  no term in the title, some term only as a prefix

Within a tier, products are ordered by the backend's relevance (bm25 with the title
weighted highest, or ts_rank with weights A > B > C), squeezed into [0, 1), then newest
first; `relevance_score` is tier + that fraction. Each tier is its own indexed query, run
best tier first until the page is full, so a page scores only the matches of the tiers
it reaches instead of every product that matches. The page's products are served from
their stored messages (see `product_wire`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Float,
    FromClause,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    cast,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
)

from services.catalogue.categories import category_exists, subtree_ids
from services.catalogue.cursors import RelevanceCursor
from services.catalogue.product_reads import PRODUCTS
from services.catalogue.product_wire import WIRE_COLUMNS, StoredProduct, stored_products
from services.catalogue.records import PUBLISHED
from services.database import Database
from services.database.schema import UtcDateTime
from services.runtime.clock import Clock

__all__ = ["SearchHit", "SearchPage", "SearchQuery", "search_terms"]

_P = PRODUCTS.c
_TERM = re.compile(r"[^\W_]+")
_TIERS = (3, 2, 1, 0)


def search_terms(query: str) -> list[str]:
    """The distinct terms of a plain-text query: runs of letters and digits, lower-cased."""
    terms = _TERM.findall(unicodedata.normalize("NFC", query).lower())
    return list(dict.fromkeys(terms))


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One matching product, its tier and its relevance within the tier."""

    product: StoredProduct
    tier: int
    relevance: float

    @property
    def score(self) -> float:
        """The relevance score callers see: higher is better, never negative."""
        return self.tier + self.relevance


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of hits and, unless it is the last, the cursor of its last hit."""

    hits: list[SearchHit]
    next_cursor: RelevanceCursor | None


class SearchQuery:
    """Runs searches on this service's backend."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock
        self._dialect: _Dialect = _Fts5() if database.dialect == "sqlite" else _TsVector()
        self._statements: dict[tuple[bool, bool], Select[Any]] = {}

    async def page(
        self,
        terms: list[str],
        category_id: str | None,
        page_size: int,
        after: RelevanceCursor | None,
    ) -> SearchPage:
        """Up to `page_size` hits for `terms`, best first, after `after`."""
        if category_id is not None:
            await category_exists(self._database, category_id)
        if not terms:
            return SearchPage([], None)
        queries = self._dialect.tier_queries(terms)
        now = self._clock.now()
        found: list[tuple[Any, int]] = []  # (row, tier)
        for tier in _TIERS:
            parameters: dict[str, Any] = {
                "query": queries[tier],
                "now": now,
                "category_id": category_id,
                "limit": page_size + 1 - len(found),
            }
            resumes = False
            if after is not None:
                if tier > after.tier:
                    continue  # every hit of a better tier came before the cursor
                if tier == after.tier:
                    resumes = True
                    parameters.update(after.parameters())
            statement = self._statement(category_id is not None, resumes)
            rows = await self._database.scan(statement, parameters)
            found.extend((row, tier) for row in rows)
            if len(found) > page_size:
                break
        page = found[:page_size]
        served = await stored_products(self._database, [row for row, _ in page], now)
        hits = [
            SearchHit(product, tier, float(row.relevance))
            for product, (row, tier) in zip(served, page, strict=True)
            if product is not None
        ]
        if len(found) <= page_size:
            return SearchPage(hits, None)
        # From the last row read, served or not: the next page starts after it.
        last_row, last_tier = page[-1]
        cursor = RelevanceCursor(
            last_tier, float(last_row.relevance), last_row.create_time, last_row.product_id
        )
        return SearchPage(hits, cursor)

    def _statement(self, in_category: bool, resumes: bool) -> Select[Any]:
        shape = (in_category, resumes)
        statement = self._statements.get(shape)
        if statement is None:
            statement = self._statements[shape] = _build(self._dialect, in_category, resumes)
        return statement


class _Dialect:
    """How one backend finds a tier's matches and rates them."""

    def tier_queries(self, terms: list[str]) -> dict[int, str]:
        """The backend query of each tier, for the bind parameter `query`."""
        raise NotImplementedError

    def matches(self) -> Select[Any]:
        """SELECT product_id, category_id, create_time and relevance (in [0, 1)) of the
        published products matching `:query`."""
        raise NotImplementedError


class _Fts5(_Dialect):
    # MATCH and bm25() take the FTS5 table's name as their first operand.
    _NAME: ColumnElement[Any] = literal_column("product_search")
    _TABLE = table("product_search", column("rowid", Integer()))
    # What a match is filtered and sorted by, in a small row per indexed product (the
    # FTS5 table has them too, but reading them there loads the product's whole text).
    _ROWS = table(
        "product_search_rows",
        column("search_rowid", Integer()),
        column("product_id", String()),
        column("category_id", String()),
        column("create_time", UtcDateTime()),
    )

    def tier_queries(self, terms: list[str]) -> dict[int, str]:
        prefixes = " ".join(f'"{term}"*' for term in terms)
        words = " ".join(f'"{term}"' for term in terms)
        title = "title : (" + " OR ".join(f'"{term}"*' for term in terms) + ")"
        return {
            3: f"({title}) AND ({words})",
            2: f"(({title}) AND ({prefixes})) NOT ({words})",
            1: f"({words}) NOT ({title})",
            0: f"(({prefixes}) NOT ({words})) NOT ({title})",
        }

    def matches(self) -> Select[Any]:
        # bm25() is lower-is-better and never positive. Weights by column: product_id,
        # category_id and create_time (not indexed), title, attributes, description.
        bm25 = func.bm25(self._NAME, 0.0, 0.0, 0.0, 10.0, 3.0, 1.0)
        rows = self._ROWS.c
        return (
            select(
                rows.product_id,
                rows.category_id,
                rows.create_time,
                (1.0 - 1.0 / (1.0 - bm25)).label("relevance"),
            )
            .select_from(self._TABLE)
            .join(self._ROWS, rows.search_rowid == self._TABLE.c.rowid)
            .where(self._NAME.op("MATCH")(bindparam("query")))
        )


class _TsVector(_Dialect):
    _DOCUMENT: ColumnElement[Any] = literal_column("products.search_document")
    # ts_rank's weights, in the order D, C, B, A.
    _WEIGHTS: ColumnElement[Any] = literal_column("'{0.1, 0.2, 0.4, 1.0}'::float4[]")

    def tier_queries(self, terms: list[str]) -> dict[int, str]:
        prefixes = " & ".join(f"'{term}':*" for term in terms)
        words = " & ".join(f"'{term}'" for term in terms)
        title = " | ".join(f"'{term}':*A" for term in terms)
        return {
            3: f"({title}) & ({words})",
            2: f"({title}) & ({prefixes}) & !({words})",
            1: f"({words}) & !({title})",
            0: f"({prefixes}) & !({words}) & !({title})",
        }

    def matches(self) -> Select[Any]:
        query = func.to_tsquery(literal_column("'simple'::regconfig"), bindparam("query"))
        rank = cast(func.ts_rank(self._WEIGHTS, self._DOCUMENT, query), Float(precision=53))
        return select(
            _P.product_id,
            _P.category_id,
            _P.create_time,
            (1.0 - 1.0 / (1.0 + rank)).label("relevance"),
        ).where(
            self._DOCUMENT.op("@@")(query),
            # The partial GIN index applies only if the status is a literal.
            _P.status == literal_column(f"'{PUBLISHED}'"),
        )


def _build(dialect: _Dialect, in_category: bool, resumes: bool) -> Select[Any]:
    scored: FromClause = dialect.matches().subquery("scored")
    ranked = select(scored.c.product_id, scored.c.create_time, scored.c.relevance)
    if in_category:
        ranked = ranked.where(scored.c.category_id.in_(subtree_ids()))
    if resumes:
        after_relevance = bindparam("after_relevance", type_=Float(precision=53))
        after_time = bindparam("after_create_time", type_=UtcDateTime())
        after_id: BindParameter[str] = bindparam("after_product_id")
        ranked = ranked.where(
            or_(
                scored.c.relevance < after_relevance,
                and_(scored.c.relevance == after_relevance, scored.c.create_time < after_time),
                and_(
                    scored.c.relevance == after_relevance,
                    scored.c.create_time == after_time,
                    scored.c.product_id < after_id,
                ),
            )
        )
    order = (scored.c.relevance.desc(), scored.c.create_time.desc(), scored.c.product_id.desc())
    page = ranked.order_by(*order).limit(bindparam("limit")).subquery("page")
    # Products (their stored messages and stock) only for the page, never for every match.
    return (
        select(*WIRE_COLUMNS, page.c.relevance, page.c.create_time)
        .join_from(PRODUCTS, page, page.c.product_id == _P.product_id)
        .order_by(page.c.relevance.desc(), page.c.create_time.desc(), page.c.product_id.desc())
    )
