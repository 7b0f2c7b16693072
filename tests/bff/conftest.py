"""The BFF over real HTTP in front of identity, wallet, catalogue, orders and miniapps
in-process.

The services run on SQLite (orders optionally on another database): their PostgreSQL
legs are covered by their own tests, and what is under test here is the HTTP
translation. One platform per test module keeps the suite quick; tests stay independent
by signing up their own users.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from superapp.identity.v1 import identity_service_pb2 as identity_pb

from bff.app import create_app
from bff.config import BffSettings
from bff.server import BffServer
from scripts.nats_process import NatsProcess
from services.catalogue.config import CatalogueSettings
from services.catalogue.server import create_server as create_catalogue
from services.identity.service_clients import secret_digest
from services.miniapps.config import MiniAppsSettings
from services.miniapps.server import create_server as create_miniapps
from services.orders.config import OrdersSettings
from services.orders.server import create_server as create_orders
from services.runtime.clock import Clock
from services.runtime.ids import new_id
from services.runtime.serving import GrpcService
from services.wallet.config import WalletSettings
from services.wallet.server import create_server as create_wallet
from tests.conftest import http_client
from tests.identity.conftest import ADMIN_EMAIL, PASSWORD, Identity, running_identity

# Generous: many tests share one client address; the limits have their own tests.
UNLIMITED = "100000/minute"
ORDERS_SECRET = "orders-test-secret-0123456789"
BFF_SECRET = "bff-test-secret-0123456789"
MINIAPPS_SECRET = "miniapps-test-secret-0123456789"


class StepHook:
    """The orders saga's step observer, which a test may set and clear at will."""

    def __init__(self) -> None:
        self.observer: Callable[[str, str], Awaitable[None]] | None = None

    async def __call__(self, order_id: str, step: str) -> None:
        if self.observer is not None:
            await self.observer(order_id, step)


@dataclass
class Session:
    """A signed-in user as the app holds them."""

    user_id: str
    email: str
    access_token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def writing(self, key: str | None = None) -> dict[str, str]:
        """Headers of a write: the token and an Idempotency-Key (fresh unless given)."""
        return {**self.auth, "Idempotency-Key": key or new_id()}


@dataclass
class Service:
    """One upstream service, restartable on its port and database."""

    settings: Any
    create: Callable[[Any, TracerProvider], Awaitable[GrpcService]]
    tracer_provider: TracerProvider
    running: GrpcService | None = None

    async def start(self) -> None:
        self.running = await self.create(self.settings, self.tracer_provider)
        # Pin the port so a restart comes back where the BFF's channel points.
        self.settings = self.settings.model_copy(update={"port": self.running.port})

    async def stop(self) -> None:
        if self.running is not None:
            await self.running.stop(0)
            self.running = None

    @property
    def address(self) -> str:
        assert self.running is not None
        return f"127.0.0.1:{self.running.port}"


@dataclass
class Platform:
    """identity, wallet, catalogue, orders and miniapps, and the BFF in front of them."""

    identity: Identity
    wallet: Service
    catalogue: Service
    orders: Service
    miniapps: Service
    steps: StepHook
    data_dir: Path
    tracer_provider: TracerProvider
    nats_url: str
    bff_settings: BffSettings = dataclasses.field(init=False)
    base_url: str = ""

    def client(self) -> httpx.AsyncClient:
        return http_client(self.base_url)

    def bff(self, **overrides: Any) -> BffSettings:
        """BFF settings pointing at this platform's services."""
        return self.bff_settings.model_copy(update=overrides)


@contextlib.asynccontextmanager
async def running_platform(
    data_dir: Path,
    tracer_provider: TracerProvider,
    nats_url: str,
    *,
    orders_database_url: str | None = None,
    miniapps_database_url: str | None = None,
    wallet_clock: Clock | None = None,
    health_probe_seconds: float = 0.2,
    miniapps_settings: dict[str, Any] | None = None,
    **orders_settings: Any,
) -> AsyncIterator[Platform]:
    """The five services on SQLite files under `data_dir` (orders on
    `orders_database_url`, miniapps on `miniapps_database_url` if given, the wallet on
    `wallet_clock`'s time if given), identity's admin bootstrapped. `miniapps_settings`
    override miniapps' settings (its background loops' intervals, say)."""
    async with running_identity(
        f"sqlite+aiosqlite:///{data_dir / 'identity.db'}",
        data_dir / "identity",
        tracer_provider,
        nats_url,
        service_clients={
            "orders": secret_digest(ORDERS_SECRET),
            "bff": secret_digest(BFF_SECRET),
            "miniapps": secret_digest(MINIAPPS_SECRET),
        },
    ) as identity:
        identity_addr = f"127.0.0.1:{identity.service.port}"
        common: dict[str, Any] = {
            "port": 0,
            "nats_url": nats_url,
            "identity_addr": identity_addr,
            "health_probe_seconds": health_probe_seconds,
            "relay": "task",
        }
        wallet = Service(
            WalletSettings(
                data_dir=data_dir / "wallet",
                database_url=f"sqlite+aiosqlite:///{data_dir / 'wallet.db'}",
                hold_sweep_seconds=0.1,
                **common,
            ),
            functools.partial(create_wallet, clock=wallet_clock),
            tracer_provider,
        )
        catalogue = Service(
            CatalogueSettings(
                data_dir=data_dir / "catalogue",
                database_url=f"sqlite+aiosqlite:///{data_dir / 'catalogue.db'}",
                **common,
            ),
            create_catalogue,
            tracer_provider,
        )
        await wallet.start()
        await catalogue.start()
        steps = StepHook()
        orders = Service(
            OrdersSettings(
                data_dir=data_dir / "orders",
                database_url=orders_database_url or f"sqlite+aiosqlite:///{data_dir / 'orders.db'}",
                client_secret=ORDERS_SECRET,
                wallet_addr=wallet.address,
                catalogue_addr=catalogue.address,
                lease_seconds=2,
                reconcile_seconds=0.1,
                retry_backoff_max_seconds=0.5,
                **{**common, **orders_settings},
            ),
            functools.partial(create_orders, step_observer=steps),
            tracer_provider,
        )
        await orders.start()
        miniapps = Service(
            MiniAppsSettings(
                **{
                    "data_dir": data_dir / "miniapps",
                    "database_url": (
                        miniapps_database_url or f"sqlite+aiosqlite:///{data_dir / 'miniapps.db'}"
                    ),
                    # A thread, not a worker process: the small test bundles review quickly.
                    "check_workers": 0,
                    "check_interval_seconds": 0.2,
                    # Its own token introspects mini-app tokens and pays through orders.
                    "client_secret": MINIAPPS_SECRET,
                    "orders_addr": orders.address,
                    "settle_interval_seconds": 0.2,
                    "settle_backoff_max_seconds": 0.5,
                    "webhook_interval_seconds": 0.2,
                    "webhook_backoff_initial_seconds": 0.2,
                    "webhook_backoff_max_seconds": 0.5,
                    **common,
                    **(miniapps_settings or {}),
                }
            ),
            create_miniapps,
            tracer_provider,
        )
        await miniapps.start()
        platform = Platform(
            identity,
            wallet,
            catalogue,
            orders,
            miniapps,
            steps,
            data_dir,
            tracer_provider,
            nats_url,
        )
        platform.bff_settings = BffSettings(
            port=0,
            identity_addr=identity_addr,
            wallet_addr=wallet.address,
            catalogue_addr=catalogue.address,
            orders_addr=orders.address,
            miniapps_addr=miniapps.address,
            auth_rate_limit=UNLIMITED,
            write_rate_limit_per_user=UNLIMITED,
            write_rate_limit_per_ip=UNLIMITED,
            shutdown_grace_seconds=1,
            client_secret=BFF_SECRET,
            mini_app_rate_limit=UNLIMITED,
        )
        try:
            yield platform
        finally:
            await miniapps.stop()
            await orders.stop()
            await catalogue.stop()
            await wallet.stop()


@contextlib.asynccontextmanager
async def serving_bff(
    settings: BffSettings, tracer_provider: TracerProvider | None = None
) -> AsyncIterator[str]:
    """The BFF on a free port over real HTTP; its base URL."""
    app = create_app(settings, tracer_provider=tracer_provider)
    server = BffServer(app, settings)
    port = await server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.stop()


@pytest.fixture(scope="module")
async def platform(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Platform]:
    """The services and a BFF over real HTTP, shared by the tests of one module.

    With a NATS server of their own: a wallet left running by an earlier module would
    take this one's `UserRegistered` events (see `own_nats`).
    """
    data_dir = tmp_path_factory.mktemp("platform")
    with NatsProcess(data_dir / "nats") as nats_server:
        async with (
            running_platform(data_dir, TracerProvider(), nats_server.url) as it,
            serving_bff(it.bff_settings) as base_url,
        ):
            it.base_url = base_url
            yield it


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the shared BFF."""
    async with platform.client() as http:
        yield http


async def sign_up(http: httpx.AsyncClient, name: str = "ann") -> Session:
    """Register and log in through the BFF, as the app does."""
    email = f"{name}-{new_id()}@example.com"
    registered = await http.post(
        "/v1/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": name.title()},
        headers={"Idempotency-Key": new_id()},
    )
    assert registered.status_code == 201, registered.text
    return await log_in(http, email)


async def log_in(http: httpx.AsyncClient, email: str) -> Session:
    reply = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    return _signed_in(reply, email)


def _signed_in(reply: httpx.Response, email: str) -> Session:
    assert reply.status_code == 200, reply.text
    body = reply.json()
    return Session(
        user_id=body["user"]["user_id"],
        email=email,
        access_token=body["tokens"]["access_token"],
        refresh_token=body["tokens"]["refresh_token"],
    )


async def admin_session(http: httpx.AsyncClient) -> Session:
    """The bootstrap admin (identity grants the role to ADMIN_EMAIL), signed up once."""
    reply = await http.post("/v1/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD})
    if reply.status_code != 401:
        # Signed in already: a second login would cost another password hash.
        return _signed_in(reply, ADMIN_EMAIL)
    registered = await http.post(
        "/v1/auth/register",
        json={"email": ADMIN_EMAIL, "password": PASSWORD, "display_name": "Root"},
        headers={"Idempotency-Key": new_id()},
    )
    assert registered.status_code in (201, 409), registered.text
    return await log_in(http, ADMIN_EMAIL)


async def merchant_session(
    http: httpx.AsyncClient, platform: Platform, name: str = "merchant"
) -> Session:
    """A user given the merchant role by the admin (over gRPC: the BFF has no role API)."""
    return await role_session(http, platform, identity_pb.ROLE_MERCHANT, name=name)


async def role_session(
    http: httpx.AsyncClient,
    platform: Platform,
    *roles: identity_pb.Role.ValueType,
    name: str = "someone",
) -> Session:
    """A new user given `roles` besides `user` by the admin (over gRPC: the BFF has no
    role API), signed in again so that the roles are in the token."""
    user = await sign_up(http, name)
    admin = await admin_session(http)
    await platform.identity.stub.SetUserRoles(
        identity_pb.SetUserRolesRequest(
            user_id=user.user_id,
            roles=[identity_pb.ROLE_USER, *roles],
            request_id=new_id(),
        ),
        metadata=(("authorization", f"Bearer {admin.access_token}"),),
    )
    return await log_in(http, user.email)  # the role reaches the next token


async def wallet_of(http: httpx.AsyncClient, session: Session) -> Any:
    """The user's wallet once the registration event has opened it."""
    deadline = asyncio.get_running_loop().time() + 15.0
    while True:
        reply = await http.get("/v1/me/wallet", headers=session.auth)
        if reply.status_code == 200:
            return reply.json()
        assert reply.status_code == 404, reply.text
        assert reply.json()["reason"] == "WALLET_NOT_FOUND"
        assert asyncio.get_running_loop().time() < deadline, "the wallet never opened"
        await asyncio.sleep(0.05)


def available(wallet: Any, currency: str = "EUR") -> tuple[int, int]:
    """(available, held) in `currency`, (0, 0) without such an account."""
    for balance in wallet["balances"]:
        if balance["currency_code"] == currency:
            return balance["available_minor"], balance["held_minor"]
    return 0, 0


async def top_up(
    http: httpx.AsyncClient, admin: Session, user: Session, amount_minor: int, currency: str = "EUR"
) -> httpx.Response:
    reply = await http.post(
        f"/v1/admin/wallets/{user.user_id}/top-ups",
        json={"amount": {"currency_code": currency, "amount_minor": amount_minor}},
        headers=admin.writing(),
    )
    assert reply.status_code == 201, reply.text
    return reply


def assert_problem(reply: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    """The reply is problem+json with this status and reason; its body."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json", reply.headers
    body: dict[str, Any] = reply.json()
    assert body["status"] == status
    assert body["reason"] == reason, body
    assert body["type"].startswith("urn:superapp:problem:")
    assert body["title"]
    assert body["detail"]
    assert body["domain"].endswith(".superapp")
    return body


__all__ = [
    "BFF_SECRET",
    "MINIAPPS_SECRET",
    "ORDERS_SECRET",
    "UNLIMITED",
    "Platform",
    "Service",
    "Session",
    "StepHook",
    "admin_session",
    "assert_problem",
    "available",
    "log_in",
    "merchant_session",
    "role_session",
    "running_platform",
    "serving_bff",
    "sign_up",
    "top_up",
    "wallet_of",
]


async def product_on_sale(
    http: httpx.AsyncClient,
    merchant: Session,
    *,
    price_minor: int,
    stock: int,
    title: str = "Coffee mug",
    currency: str = "EUR",
) -> dict[str, Any]:
    """A PUBLISHED product of `merchant` with `stock` units, made through the BFF."""
    created = await http.post(
        "/v1/merchant/products",
        json={
            "title": title,
            "description": "Holds coffee.",
            "price": {"currency_code": currency, "amount_minor": price_minor},
            "attributes": {"colour": "blue"},
        },
        headers=merchant.writing(),
    )
    assert created.status_code == 201, created.text
    product_id = created.json()["product_id"]
    restocked = await http.post(
        f"/v1/merchant/products/{product_id}/stock-adjustments",
        json={"delta": stock, "reason": "delivery"},
        headers=merchant.writing(),
    )
    assert restocked.status_code == 200, restocked.text
    published = await http.post(
        f"/v1/merchant/products/{product_id}/publish", headers=merchant.writing()
    )
    assert published.status_code == 200, published.text
    body: dict[str, Any] = published.json()
    return body


async def stock_of(http: httpx.AsyncClient, product_id: str) -> dict[str, int]:
    reply = await http.get(f"/v1/products/{product_id}")
    assert reply.status_code == 200, reply.text
    stock: dict[str, int] = reply.json()["stock"]
    return stock


def checkout_body(product: dict[str, Any], quantity: int) -> dict[str, Any]:
    """A checkout of `quantity` units at the product's listed price."""
    return {
        "product_id": product["product_id"],
        "quantity": quantity,
        "unit_price": product["price"],
    }
