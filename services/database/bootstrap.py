"""Open a service's database at start-up: reachable, migrated, or a clear refusal.

On a PostgreSQL server that does not have the service's database yet, the database is
created (as `createdb` would, through the server's `postgres` maintenance database with
the same credentials), so the README's PostgreSQL mode works on a fresh server. A role
without CREATEDB gets the refusal naming the setting, with the command to run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from services.database.engine import Database
from services.database.migrations import upgrade_to_head
from services.runtime.metrics import Metrics
from services.runtime.serving import StartupError

__all__ = ["DatabaseUnavailable", "open_database"]

_NO_SUCH_DATABASE = "3D000"
# A concurrent CREATE DATABASE of the same name fails with one of these.
_MADE_BY_ANOTHER = frozenset({"42P04", "23505"})  # duplicate_database, unique_violation


class _CannotCreate(Exception):
    """The service's PostgreSQL database is missing and could not be created."""


class DatabaseUnavailable(StartupError):
    """The configured database cannot be reached or migrated; names the setting."""


async def open_database(
    url: str,
    migrations: Path,
    *,
    setting: str,
    offload_scans_when: Callable[[], bool] = lambda: False,
    metrics: Metrics | None = None,
) -> Database:
    """Connect to `url`, apply `migrations`, and return the ready database.

    `setting` is the environment variable the URL came from, so the one line an operator
    reads says what to fix. Passwords are masked in that line. `offload_scans_when` and
    `metrics`: see `Database.connect`.
    """
    if url.startswith("sqlite"):
        database_file = make_url(url).database
        if database_file:
            Path(database_file).parent.mkdir(parents=True, exist_ok=True)
    else:
        try:
            await _create_if_missing(make_url(url))
        except _CannotCreate as error:
            name = make_url(url).database
            raise DatabaseUnavailable(
                f"{setting}: database {name} does not exist and cannot be created ({error}); "
                f"create it with: createdb -h <host> -U <an admin> {name}"
            ) from error
    database = Database.connect(url, offload_scans_when=offload_scans_when, metrics=metrics)
    try:
        await database.ping()
        await upgrade_to_head(database, migrations)
    except Exception as error:
        await database.dispose()
        shown = make_url(url).render_as_string(hide_password=True)
        raise DatabaseUnavailable(
            f"{setting}: cannot use database {shown}: {type(error).__name__}: {error}"
        ) from error
    return database


async def _create_if_missing(url: URL) -> None:
    """Create the PostgreSQL database `url` names if the server has none by that name;
    raises _CannotCreate when the role may not."""
    probe = create_async_engine(url, poolclass=NullPool)
    try:
        async with probe.connect():
            return
    except DBAPIError as error:
        if _sqlstate(error) != _NO_SUCH_DATABASE:
            return  # refused for another reason: the ping that follows reports it
    except OSError:
        return  # unreachable: likewise
    finally:
        await probe.dispose()
    admin = create_async_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{url.database}"'))
    except DBAPIError as error:
        # Two replicas starting at once: one creates it, the other finds it made.
        if _sqlstate(error) not in _MADE_BY_ANOTHER:
            raise _CannotCreate(str(error.orig)) from error
    finally:
        await admin.dispose()


def _sqlstate(error: DBAPIError) -> str | None:
    code = getattr(error.orig, "sqlstate", None)
    return code if isinstance(code, str) else None
