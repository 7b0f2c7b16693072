"""The PostgreSQL server the bench's PostgreSQL scenarios use: fresh databases on it, as
the tests make theirs, and its processes, whose CPU time the bench reads beside ours.

The server may be shared (other test runs connect to it too), so its CPU time counts
the postmaster, its auxiliary processes (WAL writer, checkpointer, autovacuum) and the
backends connected to this run's databases, found by their process titles
(`postgres: user database host(port) state`), not the backends of other databases.

`SUPERAPP_BENCH_POSTGRES_URL` names the server and the database to connect to for
administration (default: the local server with trust auth, database `test`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from scripts.benchmark.process_cpu import ProcessesFound, children, parent

__all__ = ["POSTGRES_URL_SETTING", "create_database", "drop_database", "postgres_processes"]

POSTGRES_URL_SETTING = "SUPERAPP_BENCH_POSTGRES_URL"
_DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _admin_url() -> URL:
    return make_url(os.environ.get(POSTGRES_URL_SETTING, _DEFAULT_URL))


@asynccontextmanager
async def _administration() -> AsyncIterator[AsyncConnection]:
    """A connection to the administration database, outside any transaction (CREATE
    DATABASE refuses to run inside one)."""
    admin = _admin_url()
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        try:
            connection = await engine.connect()
        except Exception as error:  # refused, unreachable, no such role: all say the same
            shown = admin.render_as_string(hide_password=True)
            raise RuntimeError(
                f"PostgreSQL not usable at {shown} ({POSTGRES_URL_SETTING}): {error}"
            ) from error
        try:
            yield connection
        finally:
            await connection.close()
    finally:
        await engine.dispose()


async def create_database(name: str) -> str:
    """Create the empty database `name`; its URL for a service's `DATABASE_URL`."""
    async with _administration() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    return _admin_url().set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    """Drop the database `url` names, closing what is still connected to it."""
    name = make_url(url).database
    async with _administration() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def _ours(title: str, databases: str) -> bool:
    """Whether a child of the postmaster serves this run: an auxiliary process, or a
    backend of one of its databases (client backends show the client's address)."""
    client_backend = "(" in title or "[local]" in title
    return databases in title or not client_backend


async def postgres_processes(databases: str) -> ProcessesFound | None:
    """The server's processes that serve databases whose names start with `databases`
    (see the module's note), found again at each read; None when the server runs
    elsewhere, where their CPU time cannot be read."""
    async with _administration() as connection:
        backend = int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        # While connected: the backend exits with the connection.
        postmaster = parent(backend)
    if postmaster is None:
        return None

    def find() -> list[int]:
        found = [pid for pid in children(postmaster) if _ours(_title(pid), databases)]
        return [postmaster, *found]

    # The postmaster reaps every database's backends: what those used is not ours.
    return ProcessesFound(find, reaped_too=False)
