"""BFF_RATE_LIMIT_STORAGE: a shared Redis makes BFF processes share one budget; a storage
that cannot be reached makes the limited routes answer 503, never a crash; a URI the
BFF cannot use is refused at start-up in one line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bff.config import BffSettings
from services.runtime.ports import free_port
from tests.bff.conftest import Platform, assert_problem, serving_bff, sign_up
from tests.bff.redis_server import RedisServer, redis_server_binary
from tests.conftest import ROOT, http_client

pytestmark = pytest.mark.skipif(
    redis_server_binary() is None, reason="redis-server is not installed"
)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a free port."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


async def _rename(http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await http.patch("/v1/me", json={"display_name": "Ann"}, headers=headers)


async def test_two_bffs_on_one_redis_share_one_budget(
    platform: Platform, client: httpx.AsyncClient, redis: RedisServer
) -> None:
    ann = await sign_up(client, "ann")
    shared = platform.bff(rate_limit_storage=redis.url, write_rate_limit_per_user="3/hour")
    async with (
        serving_bff(shared) as first_url,
        serving_bff(shared) as second_url,
        http_client(first_url) as first,
        http_client(second_url) as second,
    ):
        answers = [
            await _rename(first, ann.writing()),
            await _rename(second, ann.writing()),
            await _rename(first, ann.writing()),
            await _rename(second, ann.writing()),
        ]

    assert [a.status_code for a in answers[:3]] == [200, 200, 200], answers[-1].text
    problem = assert_problem(answers[3], 429, "RATE_LIMITED")
    assert problem["metadata"]["scope"] == "per user"


async def test_counters_in_process_memory_are_per_process(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    ann = await sign_up(client, "ann")
    alone = platform.bff(write_rate_limit_per_user="3/hour")  # async+memory://
    async with (
        serving_bff(alone) as first_url,
        serving_bff(alone) as second_url,
        http_client(first_url) as first,
        http_client(second_url) as second,
    ):
        answers = [await _rename(http, ann.writing()) for http in (first, second, first, second)]

    assert [a.status_code for a in answers] == [200, 200, 200, 200]


async def test_a_storage_that_is_away_makes_limited_routes_503_until_it_is_back(
    platform: Platform,
    client: httpx.AsyncClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ann = await sign_up(client, "ann")
    redis = RedisServer(tmp_path / "redis")  # not started: nothing listens on its port
    settings = platform.bff(rate_limit_storage=redis.url)
    with caplog.at_level(logging.WARNING, logger="bff.rate_limits"):
        async with (
            serving_bff(settings) as url,
            http_client(url) as http,
        ):
            assert any("BFF_RATE_LIMIT_STORAGE" in r.getMessage() for r in caplog.records)
            away = await _rename(http, ann.writing())
            sign_in = await http.post("/v1/auth/login", json={"email": ann.email, "password": "x"})
            read = await http.get("/v1/me", headers=ann.auth)

            redis.start()
            try:
                back = await _rename(http, ann.writing())
            finally:
                redis.stop()
            gone_again = await _rename(http, ann.writing())

    for reply in (away, sign_in, gone_again):
        problem = assert_problem(reply, 503, "RATE_LIMITS_UNAVAILABLE")
        assert problem["domain"] == "bff.superapp"
        assert str(redis.port) not in reply.text
    assert read.status_code == 200, read.text  # reads are not limited
    assert back.status_code == 200, back.text


@contextlib.contextmanager
def _silent_listener() -> Iterator[int]:
    """A port whose connections are accepted by the kernel and never answered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


async def test_a_storage_that_does_not_answer_is_503_within_the_upstream_deadline(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    ann = await sign_up(client, "ann")
    with _silent_listener() as port:
        settings = platform.bff(
            rate_limit_storage=f"async+redis://127.0.0.1:{port}", upstream_timeout_seconds=0.5
        )
        async with (
            serving_bff(settings) as url,
            http_client(url) as http,
        ):
            reply = await _rename(http, ann.writing())

    assert_problem(reply, 503, "RATE_LIMITS_UNAVAILABLE")


@pytest.mark.parametrize(
    "storage",
    ["async+nosuch://127.0.0.1:1", "memory://", "async+memcached://127.0.0.1:11211"],
)
def test_a_storage_the_bff_cannot_use_is_a_configuration_error(storage: str) -> None:
    with pytest.raises(ValueError, match="rate_limit_storage"):
        BffSettings(rate_limit_storage=storage)


async def _bff_process(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bff",
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


@contextlib.asynccontextmanager
async def _running(env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await _bff_process(env)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_the_bff_process_runs_on_the_documented_redis_storage(redis: RedisServer) -> None:
    port = free_port()
    env = {"BFF_PORT": str(port), "BFF_RATE_LIMIT_STORAGE": redis.url}
    async with _running(env) as process, httpx.AsyncClient(timeout=5) as http:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            assert process.returncode is None, "the BFF exited"
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"{base}/livez")).status_code == 200:
                    break
            await asyncio.sleep(0.1)
        # Counted per address in Redis before the missing token is noticed.
        reply = await http.patch(f"{base}/v1/me", json={"display_name": "Ann"})
        assert_problem(reply, 401, "UNAUTHENTICATED")
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), timeout=30)

    assert process.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    keys = await asyncio.to_thread(redis.keys)
    assert any("per client address" in key for key in keys), keys


async def test_an_unusable_storage_stops_the_bff_with_one_line() -> None:
    env = {"BFF_PORT": "0", "BFF_RATE_LIMIT_STORAGE": "async+nosuch://127.0.0.1:1"}
    async with _running(env) as process:
        _, err = await asyncio.wait_for(process.communicate(), timeout=60)

    lines = [line for line in err.decode().splitlines() if not line.startswith("{")]
    assert process.returncode == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("bff: configuration error: BFF_RATE_LIMIT_STORAGE:")
