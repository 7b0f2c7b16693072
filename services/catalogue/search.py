"""SearchProducts: plain-text search over published products, ranked, one contract on
both backends (FTS5 on SQLite, tsvector + GIN on PostgreSQL; see migration 0003).

User text is never query syntax. The query is split into terms here, at every character
that is not a letter or a digit, and the backend's query is assembled from those terms
alone, each quoted (FTS5) or bare alphanumerics (tsquery), so quotes, operators, column
filters and SQL fragments can only ever be searched for as words. The assembled query
travels as a bind parameter.

Ranking: the score is a tier plus a fraction. Tier 2 when a term occurs in the title,
plus 1 when every term occurs as a whole word (not only as a prefix); the fraction is the
backend's relevance (bm25 with title weighted highest, or ts_rank with weights A > B > C)
squeezed into [0, 1). So every title hit outranks every other hit, and within those
groups whole-word matches outrank prefix matches, as the contract says.
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
    Select,
    and_,
    bindparam,
    case,
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
from services.catalogue.product_reads import PRODUCTS, product_select, record_of
from services.catalogue.records import PUBLISHED, ProductRecord
from services.database import Database
from services.runtime.clock import Clock

__all__ = ["SearchHit", "SearchPage", "SearchQuery", "search_terms"]

_P = PRODUCTS.c
_TERM = re.compile(r"[^\W_]+")


def search_terms(query: str) -> list[str]:
    """The distinct terms of a plain-text query: runs of letters and digits, lower-cased."""
    terms = _TERM.findall(unicodedata.normalize("NFC", query).lower())
    return list(dict.fromkeys(terms))


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One matching product and its relevance score (higher is better, never negative)."""

    product: ProductRecord
    score: float


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
        self._dialect = _SQLITE if database.dialect == "sqlite" else _POSTGRESQL
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
        parameters: dict[str, Any] = {
            **self._dialect.queries(terms),
            "now": self._clock.now(),
            "category_id": category_id,
            "limit": page_size + 1,
        }
        if after is not None:
            parameters.update(after.parameters())
        statement = self._statement(category_id is not None, after is not None)
        rows = await self._database.scan(statement, parameters)
        hits = [SearchHit(record_of(row), float(row.score)) for row in rows[:page_size]]
        cursor = None
        if len(rows) > page_size:
            last = hits[-1]
            cursor = RelevanceCursor(last.score, last.product.create_time, last.product.product_id)
        return SearchPage(hits, cursor)

    def _statement(self, in_category: bool, resumes: bool) -> Select[Any]:
        shape = (in_category, resumes)
        statement = self._statements.get(shape)
        if statement is None:
            statement = self._statements[shape] = _build(self._dialect, in_category, resumes)
        return statement


class _Dialect:
    """How one backend matches, ranks and scores; see the module comment."""

    def queries(self, terms: list[str]) -> dict[str, str]:
        """The bind parameters `match`, `title_match` and `whole_match` for `terms`."""
        raise NotImplementedError

    def matches(self) -> ColumnElement[bool]:
        raise NotImplementedError

    def tiers(self) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        """(a term is in the title, every term is a whole word)."""
        raise NotImplementedError

    def relevance(self) -> ColumnElement[float]:
        """The backend's relevance, zero or positive, higher is better."""
        raise NotImplementedError

    def from_clause(self) -> FromClause:
        raise NotImplementedError


class _Fts5(_Dialect):
    # MATCH and bm25() take the FTS5 table's name as their first operand.
    _NAME: ColumnElement[Any] = literal_column("product_search")
    _TABLE = table("product_search", column("rowid"), column("product_id"))

    def queries(self, terms: list[str]) -> dict[str, str]:
        return {
            "match": " ".join(f'"{term}"*' for term in terms),
            "title_match": "title : (" + " OR ".join(f'"{term}"*' for term in terms) + ")",
            "whole_match": " ".join(f'"{term}"' for term in terms),
        }

    def matches(self) -> ColumnElement[bool]:
        return self._NAME.op("MATCH")(bindparam("match"))

    def _rowids(self, query: str) -> Select[Any]:
        # Its own scan of the index: never correlated with the outer query's.
        rowids = select(self._TABLE.c.rowid).where(self._NAME.op("MATCH")(bindparam(query)))
        return rowids.correlate(None)

    def tiers(self) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        return (
            self._TABLE.c.rowid.in_(self._rowids("title_match")),
            self._TABLE.c.rowid.in_(self._rowids("whole_match")),
        )

    def relevance(self) -> ColumnElement[float]:
        # bm25() is lower-is-better and never positive. Weights by column: product_id
        # (not indexed), title, attributes, description.
        return -func.bm25(self._NAME, 0.0, 10.0, 3.0, 1.0)

    def from_clause(self) -> FromClause:
        return self._TABLE.join(PRODUCTS, _P.product_id == self._TABLE.c.product_id)


class _TsVector(_Dialect):
    _DOCUMENT: ColumnElement[Any] = literal_column("products.search_document")
    # ts_rank's weights, in the order D, C, B, A.
    _WEIGHTS: ColumnElement[Any] = literal_column("'{0.1, 0.2, 0.4, 1.0}'::float4[]")

    def queries(self, terms: list[str]) -> dict[str, str]:
        return {
            "match": " & ".join(f"'{term}':*" for term in terms),
            "title_match": " | ".join(f"'{term}':*A" for term in terms),
            "whole_match": " & ".join(f"'{term}'" for term in terms),
        }

    def _query(self, name: str) -> ColumnElement[Any]:
        return func.to_tsquery(literal_column("'simple'::regconfig"), bindparam(name))

    def matches(self) -> ColumnElement[bool]:
        return self._DOCUMENT.op("@@")(self._query("match"))

    def tiers(self) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        return (
            self._DOCUMENT.op("@@")(self._query("title_match")),
            self._DOCUMENT.op("@@")(self._query("whole_match")),
        )

    def relevance(self) -> ColumnElement[float]:
        rank = func.ts_rank(self._WEIGHTS, self._DOCUMENT, self._query("match"))
        return cast(rank, Float(precision=53))

    def from_clause(self) -> FromClause:
        return PRODUCTS


_SQLITE = _Fts5()
_POSTGRESQL = _TsVector()


def _build(dialect: _Dialect, in_category: bool, resumes: bool) -> Select[Any]:
    in_title, whole_words = dialect.tiers()
    relevance = dialect.relevance()
    score = (
        case((in_title, 2.0), else_=0.0)
        + case((whole_words, 1.0), else_=0.0)
        + relevance / (relevance + 1.0)
    )
    # The partial GIN index applies only if the status is a literal, not a parameter.
    conditions: list[ColumnElement[bool]] = [
        dialect.matches(),
        _P.status == literal_column(f"'{PUBLISHED}'"),
    ]
    if in_category:
        conditions.append(_P.category_id.in_(subtree_ids()))
    scored = (
        select(_P.product_id, _P.create_time, score.label("score"))
        .select_from(dialect.from_clause())
        .where(*conditions)
        .subquery("scored")
    )
    ranked = select(scored)
    if resumes:
        after_score = bindparam("after_score", type_=Float(precision=53))
        after_time = bindparam("after_create_time", type_=_P.create_time.type)
        after_id: BindParameter[str] = bindparam("after_product_id")
        ranked = ranked.where(
            or_(
                scored.c.score < after_score,
                and_(scored.c.score == after_score, scored.c.create_time < after_time),
                and_(
                    scored.c.score == after_score,
                    scored.c.create_time == after_time,
                    scored.c.product_id < after_id,
                ),
            )
        )
    order = (scored.c.score.desc(), scored.c.create_time.desc(), scored.c.product_id.desc())
    page = ranked.order_by(*order).limit(bindparam("limit")).subquery("page")
    # Whole products (with their stock) only for the page, not for every match.
    return (
        product_select()
        .add_columns(page.c.score)
        .join_from(PRODUCTS, page, page.c.product_id == _P.product_id)
        .order_by(page.c.score.desc(), page.c.create_time.desc(), page.c.product_id.desc())
    )
