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

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["Prepared", "PreparedQuery"]


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


def _row_type(keys: list[str]) -> Any:
    """A named tuple with SQLAlchemy Row's `_mapping` (column key -> value)."""
    base: Any = namedtuple("Row", keys)  # type: ignore[misc]
    return type("Row", (base,), {"__slots__": (), "_mapping": property(base._asdict)})


class PreparedQuery:
    """A SELECT compiled once for one dialect, whose rows come back type-converted.

    The point-read counterpart of `Prepared`: the driver runs the SQL, each column goes
    through its type's result processor (dates, JSON, booleans) and rows are named
    tuples with the columns' keys, like SQLAlchemy's rows. `supported` is False for
    statements it cannot serve (expanding IN lists, duplicate column keys): callers
    then use the ordinary execution path.
    """

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        columns = list(statement.selected_columns)
        keys = [column.key or "" for column in columns]
        self.supported = (
            compiled.positiontup is not None
            and not any(bind.expanding for bind in compiled.binds.values())
            and len(set(keys)) == len(keys)
            and all(key.isidentifier() for key in keys)
        )
        if not self.supported:
            return
        self._compiled = _compile(statement, dialect, None)
        processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        # Only the columns that need converting are visited per row.
        self._results = tuple(
            (index, process) for index, process in enumerate(processors) if process is not None
        )
        self._row: Any = _row_type(keys)

    def rows(self, dbapi_connection: Any, parameters: Mapping[str, Any]) -> list[Any]:
        """Run on a raw DBAPI connection; every row, converted."""
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(
                self._compiled.sql, Prepared._positional(self._compiled, parameters or {})
            )
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        results, make = self._results, self._row._make
        converted: list[Any] = []
        for raw in fetched:
            values = list(raw)
            for index, process in results:
                values[index] = process(values[index])
            converted.append(make(values))
        return converted
