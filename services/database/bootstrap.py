"""Open a service's database at start-up: reachable, migrated, or a clear refusal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from services.database.engine import Database
from services.database.migrations import upgrade_to_head
from services.runtime.serving import StartupError

__all__ = ["DatabaseUnavailable", "open_database"]


class DatabaseUnavailable(StartupError):
    """The configured database cannot be reached or migrated; names the setting."""


async def open_database(
    url: str,
    migrations: Path,
    *,
    setting: str,
    offload_scans_when: Callable[[], bool] = lambda: False,
) -> Database:
    """Connect to `url`, apply `migrations`, and return the ready database.

    `setting` is the environment variable the URL came from, so the one line an operator
    reads says what to fix. Passwords are masked in that line. `offload_scans_when`:
    see `Database.connect`.
    """
    if url.startswith("sqlite"):
        database_file = make_url(url).database
        if database_file:
            Path(database_file).parent.mkdir(parents=True, exist_ok=True)
    database = Database.connect(url, offload_scans_when=offload_scans_when)
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
