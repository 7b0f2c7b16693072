"""A service that cannot start says why in one line and exits non-zero; a database that
goes away turns health NOT_SERVING until it is back.

A service process costs seconds of CPU in imports alone, so most refusals are checked in
this process, through the code the process runs (the service's `main`, which reads the
settings in `run_service`, or its `create_server`, which runs the start-up checks). A real
process for each way in proves the wiring: the process prints that one line (and nothing
else but its JSON logs) and exits non-zero: for a refused setting through identity's own
`__main__` (exit 2), for a start that fails through a plain `__main__` (exit 1).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import asyncpg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.engine import make_url

from services.database import open_database
from services.identity.config import IdentitySettings
from services.identity.server import create_server as create_identity
from services.identity.server import main as identity_main
from services.identity.signing_keys import SigningKeys
from services.orders.config import OrdersSettings
from services.orders.server import main as orders_main
from services.runtime.serving import StartupError
from services.runtime.settings import ConfigurationError, ServiceSettings, load_settings
from services.wallet.config import WalletSettings
from services.wallet.server import main as wallet_main
from tests.auth.conftest import ENCRYPTION, IDENTITY_MIGRATIONS, RETIRE_AFTER, FakeClock
from tests.conftest import POSTGRES_URL, ROOT
from tests.identity.conftest import KEY_ENCRYPTION_KEY as _KEK
from tests.services.conftest import Running

_IDENTITY_KEK = {"IDENTITY_KEY_ENCRYPTION_KEYS": _KEK}


async def _run_service(
    name: str, env: dict[str, str], *, without: Sequence[str] = ()
) -> tuple[int, list[str]]:
    """`python -m services.<name>` run to its end: its exit code and the lines of its
    stderr that are not its JSON logs."""
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


class _InProcess:
    """A service's `main` run in this process on an environment of the test's making."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
        self._monkeypatch = monkeypatch
        self._capsys = capsys

    def refused(
        self,
        main: Callable[[], None],
        settings: type[ServiceSettings],
        env: Mapping[str, str],
        *,
        without: Sequence[str] = (),
    ) -> tuple[object, list[str]]:
        """`main`'s exit code and every line it wrote to stderr, when `settings` (the
        class `main` reads) refuse `env` on top of this process's environment."""
        for variable in without:
            self._monkeypatch.delenv(variable, raising=False)
        for variable, value in env.items():
            self._monkeypatch.setenv(variable, value)
        # Settings it accepted would have `main` serve from inside the test process.
        with pytest.raises(ConfigurationError):
            load_settings(settings)
        self._capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main()
        return exited.value.code, self._capsys.readouterr().err.splitlines()


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> _InProcess:
    return _InProcess(monkeypatch, capsys)


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
def test_bad_setting_names_the_variable(
    variable: str, value: str, tmp_path: Path, in_process: _InProcess
) -> None:
    code, lines = in_process.refused(
        wallet_main, WalletSettings, {variable: value, "WALLET_DATA_DIR": str(tmp_path)}
    )
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
def test_bad_identity_setting_names_the_variable(
    variable: str, value: str, tmp_path: Path, in_process: _InProcess
) -> None:
    code, lines = in_process.refused(
        identity_main,
        IdentitySettings,
        {**_IDENTITY_KEK, variable: value, "IDENTITY_DATA_DIR": str(tmp_path)},
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
def test_a_missing_or_malformed_key_encryption_key_is_one_line(
    value: str | None, problem: str, tmp_path: Path, in_process: _InProcess
) -> None:
    env = {"IDENTITY_DATA_DIR": str(tmp_path)}
    if value is not None:
        env["IDENTITY_KEY_ENCRYPTION_KEYS"] = value
    code, lines = in_process.refused(
        identity_main, IdentitySettings, env, without=["IDENTITY_KEY_ENCRYPTION_KEYS"]
    )
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith(
        f"identity: configuration error: IDENTITY_KEY_ENCRYPTION_KEYS: {problem}"
    ), lines[0]
    assert value is None or value.split(",")[0] not in lines[0]  # never echo a key


async def test_an_identity_process_without_its_key_encryption_key_exits_2(
    tmp_path: Path,
) -> None:
    """Identity's own `__main__` (it also dispatches operator commands) in a real
    process: a malformed key is refused in one line that does not echo it."""
    value = "hunter2-hunter2-hunter2"
    code, lines = await _run_service(
        "identity",
        {"IDENTITY_DATA_DIR": str(tmp_path), "IDENTITY_KEY_ENCRYPTION_KEYS": value},
        without=["IDENTITY_KEY_ENCRYPTION_KEYS"],
    )
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith(
        "identity: configuration error: IDENTITY_KEY_ENCRYPTION_KEYS: Value error, entry 1"
    ), lines[0]
    assert value not in lines[0]


async def _refused_start(settings: IdentitySettings) -> StartupError:
    """What identity's start-up checks (the `create_server` its process runs) refuse
    `settings` with; the process prints it after `identity: cannot start: ` and exits 1
    (test_taken_port_names_the_setting proves that wiring in a real process)."""
    try:
        service = await create_identity(settings, TracerProvider())
    except StartupError as error:
        return error
    await service.stop(0)
    raise AssertionError("identity started")


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

    error = await _refused_start(
        IdentitySettings(port=0, data_dir=tmp_path, key_encryption_keys=other)
    )

    assert "\n" not in str(error)
    assert str(error).startswith(
        f"IDENTITY_KEY_ENCRYPTION_KEYS: signing key {kid} "
        f"(generation 1): sealed with key-encryption key {ENCRYPTION.sealing_id}, which is "
        "not configured"
    )
    assert other not in str(error)


async def test_unreachable_database_names_the_setting(tmp_path: Path) -> None:
    error = await _refused_start(
        IdentitySettings(
            port=0,
            data_dir=tmp_path,
            key_encryption_keys=_KEK,
            database_url="postgresql+asyncpg://nobody:secret@127.0.0.1:1/none",
        )
    )
    assert "\n" not in str(error)
    assert str(error).startswith("IDENTITY_DATABASE_URL: cannot use")
    assert "secret" not in str(error)


async def test_taken_port_names_the_setting(tmp_path: Path) -> None:
    """A real process: the line is its one complaint (gRPC core would add its own,
    many lines long, were the port not probed first) and it exits 1."""
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


def test_orders_without_its_client_secret_says_so(tmp_path: Path, in_process: _InProcess) -> None:
    env = {"ORDERS_PORT": "0", "ORDERS_DATA_DIR": str(tmp_path), "ORDERS_CLIENT_SECRET": "abc"}
    code, lines = in_process.refused(orders_main, OrdersSettings, env)
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("orders: configuration error: ORDERS_CLIENT_SECRET:")
    assert "abc" not in lines[0]
    code, lines = in_process.refused(orders_main, OrdersSettings, {"ORDERS_CLIENT_SECRET": ""})
    assert code == 2
    assert lines[0].startswith("orders: configuration error: ORDERS_CLIENT_SECRET:")


def test_a_service_client_without_a_sha256_is_refused(
    tmp_path: Path, in_process: _InProcess
) -> None:
    code, lines = in_process.refused(
        identity_main,
        IdentitySettings,
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
