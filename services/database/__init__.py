"""Database access shared by every service: engines, transactions and migrations.

The names below load on first use (PEP 562): the outbox relay's child process needs
only the engine, and importing Alembic and the serving runtime with it doubled the
child's start-up time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.database.bootstrap import DatabaseUnavailable, open_database
    from services.database.engine import Database
    from services.database.migrations import upgrade_to_head

__all__ = ["Database", "DatabaseUnavailable", "open_database", "upgrade_to_head"]

_HOMES = {
    "Database": "engine",
    "DatabaseUnavailable": "bootstrap",
    "open_database": "bootstrap",
    "upgrade_to_head": "migrations",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
