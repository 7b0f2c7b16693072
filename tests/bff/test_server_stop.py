"""Stopping the BFF's HTTP server is bounded, even when the app's shutdown hangs.

How long a stop takes is the bench's to measure (`scripts/bench --only bff.stop`)."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from bff.config import BffSettings
from bff.server import BffServer
from scripts.benchmark.stubborn import BareApp
from tests.conftest import http_client


def _settings() -> BffSettings:
    return BffSettings(port=0, shutdown_grace_seconds=1)


async def _refused(port: int) -> None:
    with pytest.raises(httpx.ConnectError):
        async with http_client() as client:
            await client.get(f"http://127.0.0.1:{port}/")


async def test_a_bff_stops_after_its_app_shut_down() -> None:
    app = BareApp(hang_on_shutdown=False)
    server = BffServer(app, _settings())
    port = await server.start()
    async with http_client() as client:
        assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200

    await server.stop()

    assert app.shut_down
    await _refused(port)


async def test_a_bff_whose_shutdown_hangs_still_stops(caplog: pytest.LogCaptureFixture) -> None:
    app = BareApp(hang_on_shutdown=True)
    server = BffServer(app, _settings(), release_seconds=0.5)
    port = await server.start()

    with caplog.at_level(logging.ERROR, logger="bff.server"):
        # The grace (1 s) plus the release bound (0.5 s), then the cancellation: ten
        # times that is "does not hang".
        async with asyncio.timeout(15):
            await server.stop()

    assert not app.shut_down
    assert "did not stop within 1.5s" in caplog.text
    await _refused(port)
    async with asyncio.timeout(10):
        await app.release()
