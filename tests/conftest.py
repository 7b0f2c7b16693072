"""Fixtures shared by every test: real NATS, real databases, real gRPC servers on port 0.

Chain: tmp dir → settings → service on port 0 → channel → stub.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest
from hypothesis import HealthCheck, settings
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url

from scripts.nats_process import NatsProcess
from services.database import Database

ROOT = Path(__file__).resolve().parent.parent

HTTP_TIMEOUT_SECONDS = 30.0
"""How long a test's HTTP client waits for an answer. httpx's default (5 s) failed
correct tests when a cold first request met a CI machine at a load average of 16."""


def http_client(base_url: str = "") -> httpx.AsyncClient:
    """An HTTP client for tests: patient enough for a loaded machine (see above)."""
    return httpx.AsyncClient(base_url=base_url, timeout=HTTP_TIMEOUT_SECONDS)


# Property tests judge their inputs, never the machine's speed: on this shared machine a
# draw can take seconds, and Hypothesis' timing checks then failed tests that were right.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")


# argon2id at OWASP's parameters (19 MiB, 2 passes) costs ~32 ms of CPU a hash, and the
# suite signs up and signs in users by the thousand, in this process and in the stacks
# it starts (they inherit the environment). Identity's hashing at 1 MiB and one pass
# costs ~0.6 ms and runs the same code; the tests of the parameters themselves set
# OWASP's explicitly (tests/identity/test_accounts.py), and so does the bench.
CHEAP_PASSWORD_HASHING = {
    "IDENTITY_PASSWORD_HASH_MEMORY_KIB": "1024",
    "IDENTITY_PASSWORD_HASH_ITERATIONS": "1",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, value in CHEAP_PASSWORD_HASHING.items():
        os.environ.setdefault(name, value)


def process_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie awaiting its reaper counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a `slow` test run first, longest first; each file's tests stay together
    and in order.

    pytest-xdist (`scripts/test`: one file per worker, in this order) hands out files
    as workers free up: a file of a minute handed out last ran alone at the end. Longest
    first is the classic heuristic for spreading jobs over workers; `slow(seconds=N)`
    gives a file's wall time on an idle machine, rounded (only the order depends on it).
    """
    seconds: dict[Path, float] = {}
    for item in items:
        marker = item.get_closest_marker("slow")
        if marker is not None:
            estimate = float(marker.kwargs.get("seconds", SLOW_FILE_SECONDS))
            seconds[item.path] = max(seconds.get(item.path, 0.0), estimate)
    items.sort(key=lambda item: -seconds.get(item.path, 0.0))


SLOW_FILE_SECONDS = 20.0
"""What a `slow` mark without `seconds` stands for."""


POSTGRES_URL = os.environ.get(
    "SUPERAPP_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsProcess]:
    """A private nats-server with JetStream on a free port and a temporary store."""
    with NatsProcess(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsProcess]:
    """A nats-server for this test alone, for tests that run a wallet.

    The wallet's durable consumer has one name everywhere. On the shared server, a
    wallet still running after its test (a teardown that overran) would take the next
    tests' `UserRegistered` events and open their wallets in its own database.
    """
    with NatsProcess(tmp_path / "nats") as server:
        yield server


@pytest.fixture
def tracer_provider() -> TracerProvider:
    """A tracer provider that exports nothing; tests that read spans add an exporter."""
    return TracerProvider()


async def _create_postgres_database() -> str:
    """A fresh, empty database on the local PostgreSQL; its URL."""
    admin = make_url(POSTGRES_URL)
    name = f"superapp_test_{uuid.uuid4().hex[:12]}"
    try:
        connection = await asyncpg.connect(
            host=admin.host, port=admin.port, user=admin.username, database=admin.database
        )
    except (OSError, asyncpg.PostgresError) as error:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return admin.set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(url: str) -> None:
    target = make_url(url)
    admin = make_url(POSTGRES_URL)
    connection = await asyncpg.connect(
        host=admin.host, port=admin.port, user=admin.username, database=admin.database
    )
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def empty_database(backend: str, directory: Path) -> AsyncIterator[str]:
    """The URL of an empty database: a SQLite file in `directory`, or a fresh PostgreSQL
    database dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'service.db'}"
        return
    url = await _create_postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database for one test: a SQLite file, then a fresh PostgreSQL database."""
    async with empty_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
async def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """An empty database shared by the tests of one module, on each backend in turn: for
    a module that starts its servers once (property tests run many examples)."""
    async with empty_database(request.param, tmp_path_factory.mktemp("database")) as url:
        yield url


@contextlib.asynccontextmanager
async def database_with(url: str, metadata: MetaData) -> AsyncIterator[Database]:
    """A database on `url` holding `metadata`'s tables, disposed of afterwards."""
    database = Database.connect(url)
    try:
        async with database.write_connection() as connection:
            await connection.run_sync(metadata.create_all)
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def channel_factory() -> AsyncIterator[list[grpc.aio.Channel]]:
    """Channels opened by a test, closed after it."""
    opened: list[grpc.aio.Channel] = []
    yield opened
    for channel in opened:
        await channel.close()
