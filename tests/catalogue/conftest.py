"""Catalogue on the parametrised database, with a real identity service issuing its tokens.

Identity keeps its own SQLite file (a database per service); catalogue verifies the
tokens with identity's keys fetched over gRPC, as in production. Merchants get their
role from the bootstrap admin through SetUserRoles, then sign in again.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from superapp.catalogue.v1 import catalogue_service_pb2 as pb
from superapp.catalogue.v1 import catalogue_service_pb2_grpc
from superapp.identity.v1 import identity_service_pb2 as identity_pb
from superapp.identity.v1 import identity_service_pb2_grpc
from superapp.type.v1 import money_pb2

from scripts.nats_process import NatsProcess
from services.catalogue.config import CatalogueSettings
from services.catalogue.server import create_server as create_catalogue
from services.identity.config import IdentitySettings
from services.identity.server import create_server as create_identity
from services.runtime.ids import new_id
from services.runtime.serving import GrpcService
from tests.identity.conftest import ADMIN_EMAIL, KEY_ENCRYPTION_KEY, Identity
from tests.services.recorded_events import recorded_events

Metadata = tuple[tuple[str, str], ...]


class ShiftedClock:
    """The machine's time plus an offset a test moves forward: reservations expire when
    the test says, not when the machine gets round to it."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        self._offset += delta


@dataclass
class Shop:
    """A running catalogue, the identity behind its tokens, and ways to act as users."""

    service: GrpcService
    channel: grpc.aio.Channel
    identity: Identity
    settings: CatalogueSettings
    tracer_provider: TracerProvider
    clock: ShiftedClock
    """Catalogue's time."""
    admin: Metadata = ()
    _emails: int = field(default=0)

    @property
    def stub(self) -> catalogue_service_pb2_grpc.CatalogueServiceStub:
        return catalogue_service_pb2_grpc.CatalogueServiceStub(self.channel)

    @property
    def database_url(self) -> str:
        return self.settings.database_url

    async def restart(self) -> None:
        """Stop the catalogue and start it again on the same database."""
        await self.channel.close()
        await self.service.stop(5)
        self.service = await create_catalogue(self.settings, self.tracer_provider)
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.service.port}")

    @contextlib.asynccontextmanager
    async def replica(self) -> AsyncIterator[catalogue_service_pb2_grpc.CatalogueServiceStub]:
        """A second catalogue process on the same database, as a scaled-out deployment
        runs; its stub."""
        replica = await create_catalogue(self.settings, self.tracer_provider)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}")
        try:
            yield catalogue_service_pb2_grpc.CatalogueServiceStub(channel)
        finally:
            await channel.close()
            await replica.stop(0)

    async def signed_in(self, *, merchant: bool = False) -> tuple[str, Metadata]:
        """A new user (a merchant if asked) and the metadata that authenticates as them."""
        self._emails += 1
        email = f"user{self._emails}-{new_id()[-8:]}@example.com"
        user, metadata = await self.identity.signed_up(email)
        if merchant:
            await self.identity.stub.SetUserRoles(
                identity_pb.SetUserRolesRequest(
                    user_id=user.user_id,
                    roles=[identity_pb.ROLE_USER, identity_pb.ROLE_MERCHANT],
                    request_id=new_id(),
                ),
                metadata=self.admin,
            )
            tokens = (await self.identity.login(email)).tokens
            metadata = (("authorization", f"Bearer {tokens.access_token}"),)
        return user.user_id, metadata

    async def product(
        self, merchant: Metadata, *, publish: bool = True, stock: int = 0, **fields: Any
    ) -> pb.Product:
        """A product of `merchant` (published unless asked not to) with `stock` units."""
        fields.setdefault("title", "Plain thing")
        fields.setdefault("price", money_pb2.Money(currency_code="USD", amount_minor=1000))
        created = await self.stub.CreateProduct(
            pb.CreateProductRequest(product=pb.Product(**fields), request_id=new_id()),
            metadata=merchant,
        )
        product = created.product
        if stock:
            await self.stub.AdjustStock(
                pb.AdjustStockRequest(
                    product_id=product.product_id,
                    delta=stock,
                    reason="delivery",
                    request_id=new_id(),
                ),
                metadata=merchant,
            )
        if publish:
            product = (
                await self.stub.PublishProduct(
                    pb.PublishProductRequest(product_id=product.product_id, request_id=new_id()),
                    metadata=merchant,
                )
            ).product
        return product

    async def category(self, name: str, parent_id: str = "") -> pb.Category:
        """A category created by the admin."""
        reply = await self.stub.CreateCategory(
            pb.CreateCategoryRequest(
                category=pb.Category(name=name, parent_category_id=parent_id), request_id=new_id()
            ),
            metadata=self.admin,
        )
        return reply.category

    async def stock(self, product_id: str, metadata: Metadata) -> pb.Stock:
        """The product's stock summary, as GetProduct reports it."""
        reply = await self.stub.GetProduct(
            pb.GetProductRequest(product_id=product_id), metadata=metadata
        )
        return reply.product.stock

    async def events(self, subject: str) -> list[bytes]:
        """Payloads recorded in catalogue's outbox under `subject`, in commit order."""
        return await recorded_events(self.database_url, subject)


@contextlib.asynccontextmanager
async def running_shop(
    database_url: str, data_dir: Path, tracer_provider: TracerProvider, nats_url: str
) -> AsyncIterator[Shop]:
    """Identity (on SQLite) and catalogue (on `database_url`) on port 0; the admin signed in."""
    identity = await create_identity(
        IdentitySettings(
            port=0,
            relay="task",
            data_dir=data_dir / "identity",
            nats_url=nats_url,
            bootstrap_admin_email=ADMIN_EMAIL,
            key_encryption_keys=KEY_ENCRYPTION_KEY,
            password_hash_cores=4,
        ),
        tracer_provider,
    )
    identity_channel = grpc.aio.insecure_channel(f"127.0.0.1:{identity.port}")
    try:
        settings = CatalogueSettings(
            port=0,
            relay="task",
            data_dir=data_dir / "catalogue",
            database_url=database_url,
            nats_url=nats_url,
            identity_addr=f"127.0.0.1:{identity.port}",
            reservation_sweep_seconds=0.1,
        )
        clock = ShiftedClock()
        catalogue = await create_catalogue(settings, tracer_provider, clock=clock)
        people = Identity(
            identity,
            identity_service_pb2_grpc.IdentityServiceStub(identity_channel),
            f"sqlite+aiosqlite:///{data_dir / 'identity' / 'identity.db'}",
        )
        shop = Shop(
            catalogue,
            grpc.aio.insecure_channel(f"127.0.0.1:{catalogue.port}"),
            people,
            settings,
            tracer_provider,
            clock,
        )
        try:
            _, shop.admin = await people.signed_up(ADMIN_EMAIL)
            yield shop
        finally:
            await shop.channel.close()
            await shop.service.stop(0)
    finally:
        await identity_channel.close()
        await identity.stop(0)


@pytest.fixture
async def shop(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> AsyncIterator[Shop]:
    """Catalogue on the parametrised database; the bootstrap admin signed in."""
    async with running_shop(database_url, tmp_path, tracer_provider, nats_server.url) as shop:
        yield shop
