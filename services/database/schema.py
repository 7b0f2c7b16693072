"""Schema building blocks: per-service metadata with stable constraint names, UTC times."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["UtcDateTime", "declare_unmanaged", "is_managed", "new_metadata"]

# Named constraints let Alembic alter them later, also on SQLite's batch mode.
_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """A fresh MetaData for one service's tables (never shared between services)."""
    return MetaData(naming_convention=_NAMING)


_UNMANAGED = "superapp.unmanaged_names"


def declare_unmanaged(metadata: MetaData, names: Iterable[str]) -> None:
    """Name schema objects that migrations create outside the models.

    Backend-specific objects (a full-text index that is an FTS5 table on SQLite and a
    generated column on PostgreSQL) cannot be declared as models; schema comparisons
    skip these names instead of reporting them as drift.
    """
    metadata.info.setdefault(_UNMANAGED, set()).update(names)


def is_managed(metadata: MetaData, name: str | None) -> bool:
    """Whether the object called `name` is declared by `metadata`'s models."""
    return name not in metadata.info.get(_UNMANAGED, ())


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends.

    SQLite keeps no offset, so values are normalised to UTC on the way in and marked
    UTC on the way out; PostgreSQL stores `timestamptz` natively.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # The text SQLAlchemy's SQLite DATETIME stores, always with microseconds (so
        # stored times compare as text), built by isoformat instead of %-formatting a
        # dict of parts: a transfer binds several of these.
        def process(value: datetime | None) -> str | None:
            utc = self.process_bind_param(value, dialect)
            if utc is None:
                return None
            return utc.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

        return process

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        # SQLite hands back the text SQLAlchemy stored ("2026-11-21 22:40:00.123456").
        # fromisoformat reads it several times faster than SQLAlchemy's regex, and a
        # listing converts three of these per row.
        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            return self.process_result_value(datetime.fromisoformat(value), dialect)

        return process
