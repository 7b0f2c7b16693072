"""A service client's token while identity is away: the cached token serves as long as it
is valid, and then the failure to renew it is reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider

from scripts.nats_process import NatsProcess
from services.auth.service_token import ServiceToken
from services.identity.service_clients import secret_digest
from tests.identity.conftest import running_identity

_SECRET = "a-service-client-secret-0123"


class _Clock:
    def __init__(self) -> None:
        self.time = datetime.now(UTC)

    def now(self) -> datetime:
        return self.time


async def test_the_cached_token_serves_while_identity_is_away_until_it_expires(
    tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> None:
    clock = _Clock()
    async with running_identity(
        f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}",
        tmp_path,
        tracer_provider,
        nats_server.url,
        service_clients={"jobs": secret_digest(_SECRET)},
    ) as identity:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{identity.service.port}")
        token = ServiceToken(channel, "jobs", _SECRET, clock, timeout_seconds=1)
        first = await token.metadata()
        await identity.service.stop(0)
        try:
            clock.time += timedelta(minutes=12)  # due for renewal, still valid
            assert await token.metadata() == first
            clock.time += timedelta(minutes=3)  # expired
            with pytest.raises(grpc.aio.AioRpcError) as away:
                await token.metadata()
            assert away.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await channel.close()
