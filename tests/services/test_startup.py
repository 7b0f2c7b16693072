"""A service that cannot start says why in one line and exits non-zero; a database that
goes away turns health NOT_SERVING until it is back."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from services.database import open_database
from services.identity.signing_keys import SigningKeys
from tests.auth.conftest import ENCRYPTION, IDENTITY_MIGRATIONS, RETIRE_AFTER, FakeClock
from tests.conftest import POSTGRES_URL, ROOT
from tests.identity.conftest import KEY_ENCRYPTION_KEY as _KEK
from tests.services.conftest import Running

_IDENTITY_KEK = {"IDENTITY_KEY_ENCRYPTION_KEYS": _KEK}


async def _run_service(
    name: str, env: dict[str, str], *, without: Sequence[str] = ()
) -> tuple[int, list[str]]:
    inherited = {k: v for k, v in os.environ.items() if k not in without}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"services.{name}",
        cwd=ROOT,
        env={**inherited, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    lines = [line for line in err.decode().splitlines() if not line.startswith("{")]
    return process.returncode, lines


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WALLET_PORT", "not-a-port"),
        ("WALLET_PORT", "70000"),
        ("WALLET_DATABASE_URL", "mysql://x"),
        ("WALLET_RELAY", "thread"),
        # The BFF's checkout promises its keys for a day: a shorter retention is refused.
        ("WALLET_IDEMPOTENCY_RETENTION_HOURS", "1"),
        # Too short to be a key; and a secret is never repeated in the log.
        ("WALLET_PAGE_TOKEN_SECRET", "hunter2-hunter2"),
    ],
)
async def test_bad_setting_names_the_variable(variable: str, value: str, tmp_path: Path) -> None:
    code, lines = await _run_service("wallet", {variable: value, "WALLET_DATA_DIR": str(tmp_path)})
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith(f"wallet: configuration error: {variable}:")
    shown = f"(got {value!r})" in lines[0]
    assert shown is ("SECRET" not in variable), lines[0]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IDENTITY_FORWARDED_ALLOW_IPS", "127.0.0.1,bff.internal"),
        ("IDENTITY_LOGIN_FREE_FAILURES", "-1"),
        ("IDENTITY_LOGIN_MAX_DELAY_SECONDS", "0"),
        ("IDENTITY_LOGIN_ADDRESS_MAX_FAILURES", "none"),
    ],
)
async def test_bad_identity_setting_names_the_variable(
    variable: str, value: str, tmp_path: Path
) -> None:
    code, lines = await _run_service(
        "identity", {**_IDENTITY_KEK, variable: value, "IDENTITY_DATA_DIR": str(tmp_path)}
    )
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith(f"identity: configuration error: {variable}:")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "Field required"),
        ("hunter2-hunter2-hunter2", "Value error, entry 1 is not the base64url of 32 bytes"),
        # 31 bytes: a key for AES-248, which does not exist.
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Value error, entry 1 is not"),
        (f"{_KEK},{_KEK}", "Value error, entry 2 repeats an earlier key"),
    ],
)
async def test_a_missing_or_malformed_key_encryption_key_is_one_line(
    value: str | None, problem: str, tmp_path: Path
) -> None:
    env = {"IDENTITY_DATA_DIR": str(tmp_path)}
    if value is not None:
        env["IDENTITY_KEY_ENCRYPTION_KEYS"] = value
    code, lines = await _run_service("identity", env, without=["IDENTITY_KEY_ENCRYPTION_KEYS"])
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith(
        f"identity: configuration error: IDENTITY_KEY_ENCRYPTION_KEYS: {problem}"
    ), lines[0]
    assert value is None or value.split(",")[0] not in lines[0]  # never echo a key


async def test_keys_that_the_key_encryption_key_does_not_open_stop_the_start(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}"
    database = await open_database(url, IDENTITY_MIGRATIONS, setting="IDENTITY_DATABASE_URL")
    try:
        kid = (
            (
                await SigningKeys.open(
                    database, ENCRYPTION, clock=FakeClock(), retire_after=RETIRE_AFTER
                )
            )
            .active()
            .kid
        )
    finally:
        await database.dispose()
    other = secrets.token_urlsafe(32)

    code, lines = await _run_service(
        "identity",
        {
            "IDENTITY_PORT": "0",
            "IDENTITY_DATA_DIR": str(tmp_path),
            "IDENTITY_KEY_ENCRYPTION_KEYS": other,
        },
    )

    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith(
        f"identity: cannot start: IDENTITY_KEY_ENCRYPTION_KEYS: signing key {kid} "
        f"(generation 1): sealed with key-encryption key {ENCRYPTION.sealing_id}, which is "
        "not configured"
    )
    assert other not in lines[0]


async def test_unreachable_database_names_the_setting(tmp_path: Path) -> None:
    code, lines = await _run_service(
        "identity",
        {
            **_IDENTITY_KEK,
            "IDENTITY_PORT": "0",
            "IDENTITY_DATABASE_URL": "postgresql+asyncpg://nobody:secret@127.0.0.1:1/none",
        },
    )
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith("identity: cannot start: IDENTITY_DATABASE_URL: cannot use")
    assert "secret" not in lines[0]


async def test_taken_port_names_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, lines = await _run_service(
            "catalogue", {"CATALOGUE_PORT": str(port), "CATALOGUE_DATA_DIR": str(tmp_path)}
        )
    assert code == 1
    assert lines == [
        f"catalogue: cannot start: CATALOGUE_PORT: cannot listen on 127.0.0.1:{port}"
        " (in use or not permitted)"
    ]


async def _set_connections_allowed(database: str, allowed: bool) -> None:
    admin = make_url(POSTGRES_URL)
    connection = await asyncpg.connect(
        host=admin.host, port=admin.port, user=admin.username, database=admin.database
    )
    try:
        await connection.execute(
            f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}'
        )
        if not allowed:
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                database,
            )
    finally:
        await connection.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_health_follows_database_reachability(catalogue: Running, database_url: str) -> None:
    health = health_pb2_grpc.HealthStub(catalogue.channel)
    request = health_pb2.HealthCheckRequest(service=catalogue.kind.grpc_name)

    async def status_becomes(expected: int) -> None:
        for _ in range(100):
            if (await health.Check(request)).status == expected:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"health never became {expected}")

    database = str(make_url(database_url).database)
    await status_becomes(health_pb2.HealthCheckResponse.SERVING)
    await _set_connections_allowed(database, allowed=False)
    try:
        await status_becomes(health_pb2.HealthCheckResponse.NOT_SERVING)
    finally:
        await _set_connections_allowed(database, allowed=True)
    await status_becomes(health_pb2.HealthCheckResponse.SERVING)


async def test_orders_without_its_client_secret_says_so(tmp_path: Path) -> None:
    env = {"ORDERS_PORT": "0", "ORDERS_DATA_DIR": str(tmp_path), "ORDERS_CLIENT_SECRET": "abc"}
    code, lines = await _run_service("orders", env)
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("orders: configuration error: ORDERS_CLIENT_SECRET:")
    assert "abc" not in lines[0]
    env.pop("ORDERS_CLIENT_SECRET")
    code, lines = await _run_service("orders", {**env, "ORDERS_CLIENT_SECRET": ""})
    assert code == 2
    assert lines[0].startswith("orders: configuration error: ORDERS_CLIENT_SECRET:")


async def test_a_service_client_without_a_sha256_is_refused(tmp_path: Path) -> None:
    code, lines = await _run_service(
        "identity",
        {
            **_IDENTITY_KEK,
            "IDENTITY_PORT": "0",
            "IDENTITY_DATA_DIR": str(tmp_path),
            "IDENTITY_SERVICE_CLIENTS": '{"orders": "the-secret-itself"}',
        },
    )
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("identity: configuration error: IDENTITY_SERVICE_CLIENTS:")
    assert "SHA-256" in lines[0]
    assert "the-secret-itself" not in lines[0]  # never echo what may be a secret
