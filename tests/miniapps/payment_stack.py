"""The whole platform for payment requests: identity, wallet, catalogue, orders and
miniapps in-process, the BFF over real HTTP in front of them, and what a mini-app needs
to ask for a payment: a published mini-app, its webhook receiver, a user's consent and
the mini-app token its backend redeems. Shared by the gRPC tests (tests/miniapps) and
the HTTP ones (tests/bff)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from superapp.miniapps.v1 import miniapps_service_pb2 as pb
from superapp.miniapps.v1 import miniapps_service_pb2_grpc
from superapp.orders.v1 import orders_service_pb2_grpc

from scripts.nats_process import NatsProcess
from services.runtime.ids import new_id
from tests.bff.conftest import (
    Platform,
    Session,
    admin_session,
    running_platform,
    serving_bff,
    sign_up,
    top_up,
    wallet_of,
)
from tests.bff.test_mini_app_oauth import REDIRECT, Published, basic, consented, in_review
from tests.bff.test_miniapps import developer, registered, reviewer, uploaded
from tests.conftest import _create_postgres_database, _drop_postgres_database
from tests.miniapps.bundles import valid_bundle
from tests.miniapps.webhook_receiver import Receiver, WallClock, serving_receiver

__all__ = [
    "BACKENDS",
    "Metadata",
    "MiniApp",
    "eventually",
    "funded_user",
    "grpc_auth",
    "payment_platform",
    "published_mini_app",
]

Metadata = tuple[tuple[str, str], ...]
T = TypeVar("T")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def grpc_auth(token: str) -> Metadata:
    """gRPC metadata sending `token` as the bearer."""
    return (("authorization", f"Bearer {token}"),)


@contextlib.asynccontextmanager
async def payment_platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    """The platform and its BFF, miniapps on the backend `request.param` names."""
    data_dir = tmp_path_factory.mktemp("payments")
    url = None if request.param == "sqlite" else await _create_postgres_database()
    try:
        with NatsProcess(data_dir / "nats") as nats_server:
            async with (
                running_platform(
                    data_dir, TracerProvider(), nats_server.url, miniapps_database_url=url
                ) as platform,
                serving_bff(platform.bff_settings) as base_url,
            ):
                platform.base_url = base_url
                yield platform
    finally:
        if url is not None:
            await _drop_postgres_database(url)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, within: float = 60.0
) -> T:
    """The first truthy answer of `probe`, polled until `within` seconds have passed."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await probe()
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.1)


@dataclass
class MiniApp:
    """A published mini-app with `wallet.pay`, its developer and its webhook receiver."""

    platform: Platform
    http: httpx.AsyncClient
    mini_app_id: str
    client_id: str
    client_secret: str
    developer: Session
    reviewer: Session
    receiver: Receiver
    channel: grpc.aio.Channel
    orders_channel: grpc.aio.Channel

    @property
    def stub(self) -> miniapps_service_pb2_grpc.MiniAppsServiceStub:
        return miniapps_service_pb2_grpc.MiniAppsServiceStub(self.channel)

    @property
    def orders(self) -> orders_service_pb2_grpc.OrdersServiceStub:
        return orders_service_pb2_grpc.OrdersServiceStub(self.orders_channel)

    async def token(self, user: Session, granted: list[str] | None = None) -> str:
        """The user consents in the shell; the backend redeems the code: its token."""
        answer, verifier = await consented(
            self.http, user, self._published(), granted or ["profile.basic", "wallet.pay"]
        )
        reply = await self.http.post(
            "/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": answer["code"],
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            },
            headers=basic(self.client_id, self.client_secret),
        )
        assert reply.status_code == 200, reply.text
        token: str = reply.json()["access_token"]
        return token

    def _published(self) -> Published:
        return Published(self.mini_app_id, self.client_id, self.client_secret, {})

    async def ask(
        self, token: str, merchant: Session, amount_minor: int, key: str | None = None
    ) -> pb.PaymentRequest:
        """The backend's CreatePaymentRequest in EUR; the new request."""
        reply = await self.stub.CreatePaymentRequest(
            pb.CreatePaymentRequestRequest(
                merchant_id=merchant.user_id,
                amount={"currency_code": "EUR", "amount_minor": amount_minor},
                description="Electricity, November",
                idempotency_key=key or new_id(),
            ),
            metadata=grpc_auth(token),
        )
        return reply.payment_request

    async def events(self, payment_request_id: str, count: int) -> list[str]:
        """The event types the receiver took in for the request, once `count` arrived."""

        async def arrived() -> list[str] | None:
            types = [
                str(event["type"])
                for event in self.receiver.effects.values()
                if isinstance(event["data"], dict)
                and event["data"]["payment_request_id"] == payment_request_id
            ]
            return types if len(types) >= count else None

        return await eventually(arrived, f"{count} webhook events of {payment_request_id}")


@contextlib.asynccontextmanager
async def published_mini_app(http: httpx.AsyncClient, platform: Platform) -> AsyncIterator[MiniApp]:
    """A mini-app registered, reviewed and published with `wallet.pay`, whose developer
    set its webhook endpoint to a real receiver."""
    dev = await developer(http, platform)
    staff = await reviewer(http, platform)
    created = await registered(http, dev, redirect_uris=[REDIRECT])
    app = created["mini_app"]
    version = await uploaded(http, dev, app["mini_app_id"], valid_bundle())
    await in_review(http, dev, version["version_id"])
    approved = await http.post(
        f"/v1/review/versions/{version['version_id']}/approve", json={}, headers=staff.writing()
    )
    assert approved.status_code == 200, approved.text
    done = await http.post(
        f"/v1/developer/versions/{version['version_id']}/publish", headers=dev.writing()
    )
    assert done.status_code == 200, done.text
    async with (
        serving_receiver(WallClock()) as receiver,
        grpc.aio.insecure_channel(platform.miniapps.address) as channel,
        grpc.aio.insecure_channel(platform.orders.address) as orders_channel,
    ):
        found = MiniApp(
            platform,
            http,
            app["mini_app_id"],
            app["client_id"],
            created["client_secret"],
            dev,
            staff,
            receiver,
            channel,
            orders_channel,
        )
        endpoint = await found.stub.SetWebhookEndpoint(
            pb.SetWebhookEndpointRequest(
                mini_app_id=found.mini_app_id, url=receiver.url, request_id=new_id()
            ),
            metadata=grpc_auth(dev.access_token),
        )
        assert endpoint.signing_secret.startswith("whsec_")
        receiver.secret = endpoint.signing_secret
        yield found


async def funded_user(http: httpx.AsyncClient, name: str, amount_minor: int) -> Session:
    """A new user whose wallet holds `amount_minor` EUR (0: an opened, empty wallet)."""
    user = await sign_up(http, name)
    await wallet_of(http, user)
    if amount_minor:
        await top_up(http, await admin_session(http), user, amount_minor)
    return user
