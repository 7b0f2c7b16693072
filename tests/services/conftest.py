"""Each service started in-process on port 0 over the parametrised database."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider

from scripts.nats_process import NatsProcess
from services.catalogue.config import CatalogueSettings
from services.catalogue.server import SERVICE_NAME as CATALOGUE
from services.catalogue.server import create_server as create_catalogue
from services.identity.config import IdentitySettings
from services.identity.server import SERVICE_NAME as IDENTITY
from services.identity.server import create_server as create_identity
from services.miniapps.config import MiniAppsSettings
from services.miniapps.server import SERVICE_NAME as MINIAPPS
from services.miniapps.server import create_server as create_miniapps
from services.orders.config import OrdersSettings
from services.orders.server import SERVICE_NAME as ORDERS
from services.orders.server import create_server as create_orders
from services.runtime.health_client import wait_serving
from services.runtime.serving import GrpcService
from services.wallet.config import WalletSettings
from services.wallet.server import SERVICE_NAME as WALLET
from services.wallet.server import create_server as create_wallet
from tests.identity.conftest import KEY_ENCRYPTION_KEY, identity

__all__ = ["identity"]  # re-exported fixture: services tests sign users in through it


@dataclass(frozen=True)
class ServiceKind:
    """How to build one of our services for a test."""

    name: str
    grpc_name: str
    settings: Callable[..., Any]
    create: Callable[[Any, TracerProvider], Awaitable[GrpcService]]


SERVICES = [
    ServiceKind(
        "identity",
        IDENTITY,
        functools.partial(IdentitySettings, key_encryption_keys=KEY_ENCRYPTION_KEY),
        create_identity,
    ),
    ServiceKind("wallet", WALLET, WalletSettings, create_wallet),
    ServiceKind("catalogue", CATALOGUE, CatalogueSettings, create_catalogue),
    ServiceKind(
        "orders",
        ORDERS,
        functools.partial(OrdersSettings, client_secret="health-and-reflection-secret"),
        create_orders,
    ),
    ServiceKind("miniapps", MINIAPPS, MiniAppsSettings, create_miniapps),
]


@dataclass
class Running:
    """A started service and a channel to it."""

    kind: ServiceKind
    service: GrpcService
    channel: grpc.aio.Channel

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.service.port}"


async def start(
    kind: ServiceKind,
    database_url: str,
    data_dir: Path,
    tracer_provider: TracerProvider,
    nats_url: str,
) -> GrpcService:
    settings = kind.settings(
        port=0,
        data_dir=data_dir,
        database_url=database_url,
        nats_url=nats_url,
        health_probe_seconds=0.2,
        relay="task",
    )
    return await kind.create(settings, tracer_provider)


@contextlib.asynccontextmanager
async def serve(
    kind: ServiceKind,
    database_url: str,
    data_dir: Path,
    tracer_provider: TracerProvider,
    nats_url: str,
) -> AsyncIterator[Running]:
    """`kind` started on port 0 with a channel to it; both closed afterwards."""
    service = await start(kind, database_url, data_dir, tracer_provider, nats_url)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    try:
        # As any client should: SERVING means its events flow (services.runtime.health).
        async with asyncio.timeout(60):
            await wait_serving(channel)
        yield Running(kind, service, channel)
    finally:
        await channel.close()
        await service.stop(0)


@pytest.fixture
async def wallet(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, own_nats: NatsProcess
) -> AsyncIterator[Running]:
    """The wallet service on every database backend, with a NATS server of its own."""
    async with serve(SERVICES[1], database_url, tmp_path, tracer_provider, own_nats.url) as it:
        yield it


@pytest.fixture
async def catalogue(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> AsyncIterator[Running]:
    """The catalogue service on every database backend, connected to the test NATS."""
    async with serve(SERVICES[2], database_url, tmp_path, tracer_provider, nats_server.url) as it:
        yield it
