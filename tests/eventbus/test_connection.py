"""The service's NATS link: closing it is quiet and prompt."""

from __future__ import annotations

import asyncio
import logging

import pytest

from scripts.nats_process import NatsProcess
from services.eventbus import NatsLink


async def test_closing_a_connected_link_does_not_report_nats_as_gone(
    nats: NatsProcess, caplog: pytest.LogCaptureFixture
) -> None:
    link = await _connected(nats)

    with caplog.at_level(logging.INFO, logger="services.eventbus.connection"):
        await link.close()

    assert not link.is_connected
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_link_whose_server_goes_away_says_so(
    nats: NatsProcess, caplog: pytest.LogCaptureFixture
) -> None:
    link = await _connected(nats)
    try:
        with caplog.at_level(logging.INFO, logger="services.eventbus.connection"):
            nats.stop()
            await _until_warned(caplog)
    finally:
        await link.close()

    assert any("disconnected from NATS" in r.getMessage() for r in caplog.records)


async def _connected(nats: NatsProcess) -> NatsLink:
    link = NatsLink(nats.url, "link-under-test")
    link.start()
    await link.wait()
    return link


async def _until_warned(caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(200):
        if any(r.levelno >= logging.WARNING for r in caplog.records):
            return
        await asyncio.sleep(0.05)
