"""A mini-app backend's webhook receiver, served for real on 127.0.0.1:0, and the
webhook outbox of one registered mini-app on the test's database: shared by the
webhook and payment request tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.database import Database
from services.miniapps.models import MINI_APPS, Base
from services.miniapps.webhook_delivery import EVENT_ID_HEADER, WebhookDeliverer
from services.miniapps.webhook_signature import SIGNATURE_HEADER, BadSignature, verify
from services.miniapps.webhooks import Webhooks
from services.runtime.ids import new_id
from tests.conftest import database_with

MAX_ATTEMPTS = 4


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.time = datetime(2026, 12, 7, tzinfo=UTC)

    def now(self) -> datetime:
        return self.time


class WallClock(ManualClock):
    """The system's time, for a receiver in front of running services (whose
    signatures carry the real time)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Receiver:
    """A mini-app backend's webhook endpoint: verifies, counts, de-duplicates."""

    clock: ManualClock
    secret: str = ""
    fail_first: int = 0
    posts: int = 0
    refused_signatures: int = 0
    effects: dict[str, dict[str, object]] = field(default_factory=dict)
    url: str = ""
    received: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when an event first takes effect."""

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        self.posts += 1
        try:
            verify(
                request.headers[SIGNATURE_HEADER],
                self.secret,
                body,
                now=int(self.clock.now().timestamp()),
            )
        except (BadSignature, KeyError):
            self.refused_signatures += 1
            return Response(status_code=401)
        if self.posts <= self.fail_first:
            return Response(status_code=500)
        event = json.loads(body)
        assert event["event_id"] == request.headers[EVENT_ID_HEADER]
        # Idempotent on the event id, as the documentation asks of receivers.
        self.effects.setdefault(event["event_id"], event)
        self.received.set()
        return Response(status_code=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving_receiver(ManualClock()) as found:
        yield found


@contextlib.asynccontextmanager
async def serving_receiver(clock: ManualClock) -> AsyncIterator[Receiver]:
    """A receiver served on 127.0.0.1:0 that checks signatures against `clock`."""
    found = Receiver(clock)
    app = Starlette(routes=[Route("/hook", found.hook, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    found.url = f"http://127.0.0.1:{port}/hook"
    yield found
    server.should_exit = True
    await task


@dataclass
class Outbox:
    database: Database
    webhooks: Webhooks
    mini_app_id: str
    clients: list[httpx.AsyncClient]

    def deliverer(self, clock: ManualClock) -> WebhookDeliverer:
        client = httpx.AsyncClient(timeout=5.0)
        self.clients.append(client)
        return WebhookDeliverer(
            self.database,
            clock,
            client,
            lease=timedelta(seconds=30),
            max_attempts=MAX_ATTEMPTS,
            backoff_initial_seconds=1.0,
            backoff_max_seconds=60.0,
            interval_seconds=1.0,
        )

    async def add_mini_app(self, clock: ManualClock) -> str:
        """Another registered mini-app, without a webhook endpoint."""
        return await _add_mini_app(self.database, clock)

    async def enqueue(self, event_id: str | None = None) -> str:
        async with self.database.write() as session:
            found = await self.webhooks.enqueue(
                session,
                self.mini_app_id,
                "payment_request.succeeded",
                {"payment_request_id": "p1", "amount_minor": 1250},
                event_id=event_id,
            )
        assert found is not None
        return found

    async def state(self, event_id: str) -> tuple[str, int, str]:
        async with self.database.read() as session:
            found = await self.webhooks.delivery(session, event_id)
        assert found is not None
        return found.state, found.attempts, found.last_error


async def _add_mini_app(database: Database, clock: ManualClock) -> str:
    mini_app_id = new_id()
    now = clock.now()
    async with database.write() as session:
        await session.execute(
            MINI_APPS.insert().values(
                mini_app_id=mini_app_id,
                client_id="ma_" + mini_app_id[:20],
                developer_id=new_id(),
                name="Pay a bill",
                category="FINANCE",
                description="Pays bills.",
                icon_url="https://cdn.example.com/bill.png",
                redirect_uris=[],
                network_domains=[],
                status="ACTIVE",
                suspend_reason="",
                secret_sha256="0" * 64,
                create_time=now,
                update_time=now,
            )
        )
    return mini_app_id


@pytest.fixture
async def outbox(database_url: str, receiver: Receiver) -> AsyncIterator[Outbox]:
    async with database_with(database_url, Base.metadata) as database:
        mini_app_id = await _add_mini_app(database, receiver.clock)
        webhooks = Webhooks(database, receiver.clock)
        async with database.write() as session:
            receiver.secret = await webhooks.register(session, mini_app_id, receiver.url)
        found = Outbox(database, webhooks, mini_app_id, [])
        yield found
        for client in found.clients:
            await client.aclose()
