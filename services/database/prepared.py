"""Core statements compiled once per dialect and run straight on the DBAPI cursor.

For the hottest write paths only. Measured on the wallet's transfer command, SQLAlchemy's
per-execution machinery (execution context, events, result set-up) cost ~90 us per
statement against ~8 us for sqlite3 itself: ten statements a transfer made the
framework, not the database, the bottleneck. A `Prepared` statement keeps SQLAlchemy for
what it is good at (dialect-correct SQL, placeholders, type conversion of parameters)
and skips the rest at execution time.

Rows come back as the driver returns them (no result type processing): select only
columns whose driver values are already what the caller wants (strings, integers,
bytes), and read anything else through the ordinary `Connection.execute`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["Prepared"]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    defaults: Mapping[str, Any]


def _compile(
    statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None
) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=column_keys)
    assert isinstance(compiled, SQLCompiler)  # DML and SELECT compile to SQL
    names = tuple(compiled.positiontup or ())
    if compiled.positiontup is None:
        raise ValueError(f"{dialect.name} uses named parameters; Prepared needs positional")
    processors = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    # Literal values in the statement (`status == 'pending'`) are parameters too.
    defaults = {
        name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
    }
    return _Compiled(compiled.string, names, processors, defaults)


class Prepared:
    """One statement; compiled on first use for the connection's dialect.

    An INSERT without `.values()` takes its columns from `column_keys`, as SQLAlchemy
    takes them from the first parameter set (the other columns get their defaults).
    """

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] | None = None) -> None:
        self._statement = statement
        self._column_keys = list(column_keys) if column_keys is not None else None
        self._by_dialect: dict[str, _Compiled] = {}

    def _for(self, connection: Connection) -> _Compiled:
        dialect = connection.dialect
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = _compile(self._statement, dialect, self._column_keys)
            self._by_dialect[dialect.name] = compiled
        return compiled

    @staticmethod
    def _positional(compiled: _Compiled, parameters: Mapping[str, Any]) -> list[Any]:
        values = []
        for name, process in zip(compiled.names, compiled.processors, strict=True):
            value = parameters[name] if name in parameters else compiled.defaults[name]
            values.append(process(value) if process is not None else value)
        return values

    def execute(self, connection: Connection, parameters: Mapping[str, Any]) -> Any:
        """Execute once; returns the DBAPI cursor (`rowcount`, `fetchone()`, `fetchall()`)."""
        compiled = self._for(connection)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(compiled.sql, self._positional(compiled, parameters))
        return cursor

    def execute_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per parameter set, in one driver call."""
        compiled = self._for(connection)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.executemany(compiled.sql, [self._positional(compiled, row) for row in rows])

    def first(self, connection: Connection, parameters: Mapping[str, Any]) -> Any:
        """The first row as the driver returns it, or None."""
        return self.execute(connection, parameters).fetchone()

    def all(self, connection: Connection, parameters: Mapping[str, Any]) -> list[Any]:
        """Every row as the driver returns it."""
        return list(self.execute(connection, parameters).fetchall())
