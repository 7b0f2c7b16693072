"""Declarative base factory: each service gets its own metadata with stable constraint names."""

from __future__ import annotations

from sqlalchemy import MetaData

__all__ = ["new_metadata"]

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
