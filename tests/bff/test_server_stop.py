"""Stopping the BFF's HTTP server is bounded, even when the app's shutdown hangs."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest

from bff.config import BffSettings
from bff.server import BffServer


class _App:
    """A bare ASGI app: answers 200, and its shutdown hangs while `hang` is set."""

    def __init__(self, *, hang: bool) -> None:
        self.hang = hang
        self.shut_down = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.hang:  # like an upstream channel that never closes
                        await asyncio.Event().wait()
                    self.shut_down = True
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _settings() -> BffSettings:
    return BffSettings(port=0, shutdown_grace_seconds=1)


async def test_a_bff_stops_after_its_app_shut_down() -> None:
    app = _App(hang=False)
    server = BffServer(app, _settings())
    port = await server.start()
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200

    await server.stop()

    assert app.shut_down
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/")


async def test_a_bff_whose_shutdown_hangs_still_stops_within_its_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = BffServer(_App(hang=True), _settings(), release_seconds=0.5)
    await server.start()

    began = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="bff.server"):
        await asyncio.wait_for(server.stop(), timeout=10)

    # The grace (1 s) plus the release bound (0.5 s), then the cancellation.
    assert time.monotonic() - began < 4
    assert "did not stop within 1.5s" in caplog.text
