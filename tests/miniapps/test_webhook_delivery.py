"""The webhook outbox and its deliverer, against a real HTTP receiver on 127.0.0.1:0
that verifies each delivery's signature and counts them (and fails the first N on
request), on both database backends. Time is a clock the test moves by hand, so the
backoff is passed over rather than waited for."""

from __future__ import annotations

import asyncio
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
from services.miniapps.models import MINI_APPS, WEBHOOK_DELIVERIES, Base
from services.miniapps.webhook_delivery import EVENT_ID_HEADER, WebhookDeliverer
from services.miniapps.webhook_signature import SIGNATURE_HEADER, BadSignature, verify
from services.miniapps.webhooks import DeliveryState, Webhooks, checked_webhook_url
from services.runtime.errors import InvalidArgument
from services.runtime.ids import new_id
from tests.conftest import database_with

MAX_ATTEMPTS = 4


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.time = datetime(2026, 12, 7, tzinfo=UTC)

    def now(self) -> datetime:
        return self.time


@dataclass
class Receiver:
    """A mini-app backend's webhook endpoint: verifies, counts, de-duplicates."""

    clock: _Clock
    secret: str = ""
    fail_first: int = 0
    posts: int = 0
    refused_signatures: int = 0
    effects: dict[str, dict[str, object]] = field(default_factory=dict)
    url: str = ""

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
        return Response(status_code=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    clock = _Clock()
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

    def deliverer(self, clock: _Clock) -> WebhookDeliverer:
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


@pytest.fixture
async def outbox(database_url: str, receiver: Receiver) -> AsyncIterator[Outbox]:
    async with database_with(database_url, Base.metadata) as database:
        mini_app_id = new_id()
        now = receiver.clock.now()
        webhooks = Webhooks(database, receiver.clock)
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
            receiver.secret = await webhooks.register(session, mini_app_id, receiver.url)
        found = Outbox(database, webhooks, mini_app_id, [])
        yield found
        for client in found.clients:
            await client.aclose()


async def test_a_delivery_is_signed_and_received_once(outbox: Outbox, receiver: Receiver) -> None:
    event_id = await outbox.enqueue()
    deliverer = outbox.deliverer(receiver.clock)
    assert await deliverer.deliver_one()
    assert not await deliverer.deliver_one()  # nothing else is due
    assert await outbox.state(event_id) == (DeliveryState.DELIVERED, 1, "")
    assert receiver.posts == 1
    assert receiver.refused_signatures == 0
    assert receiver.effects[event_id]["data"] == {"payment_request_id": "p1", "amount_minor": 1250}


async def test_a_failing_receiver_is_retried_after_a_backoff_until_it_answers(
    outbox: Outbox, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    event_id = await outbox.enqueue()
    deliverer = outbox.deliverer(receiver.clock)
    assert await deliverer.deliver_one()
    state, attempts, error = await outbox.state(event_id)
    assert (state, attempts, error) == (DeliveryState.PENDING, 1, "HTTP 500")
    # Not due again until its backoff has passed.
    assert not await deliverer.deliver_one()
    receiver.clock.time += timedelta(minutes=2)
    assert await deliverer.deliver_one()
    receiver.clock.time += timedelta(minutes=2)
    assert await deliverer.deliver_one()
    assert await outbox.state(event_id) == (DeliveryState.DELIVERED, 3, "")
    assert receiver.posts == 3
    assert list(receiver.effects) == [event_id]


async def test_attempts_are_bounded_then_the_delivery_is_failed_and_queryable(
    outbox: Outbox, receiver: Receiver
) -> None:
    receiver.fail_first = 1000
    event_id = await outbox.enqueue()
    deliverer = outbox.deliverer(receiver.clock)
    for _ in range(MAX_ATTEMPTS):
        assert await deliverer.deliver_one()
        receiver.clock.time += timedelta(minutes=2)
    assert not await deliverer.deliver_one()
    assert await outbox.state(event_id) == (DeliveryState.FAILED, MAX_ATTEMPTS, "HTTP 500")
    assert receiver.posts == MAX_ATTEMPTS
    assert receiver.effects == {}


async def test_the_schedule_survives_a_restart_of_the_deliverer(
    outbox: Outbox, receiver: Receiver
) -> None:
    receiver.fail_first = 1
    event_id = await outbox.enqueue()
    first = outbox.deliverer(receiver.clock)
    assert await first.deliver_one()
    await first.close()
    receiver.clock.time += timedelta(minutes=2)
    second = outbox.deliverer(receiver.clock)  # a new process: state is in the row
    assert await second.deliver_one()
    assert await outbox.state(event_id) == (DeliveryState.DELIVERED, 2, "")


async def test_a_replayed_event_is_one_delivery(outbox: Outbox, receiver: Receiver) -> None:
    event_id = await outbox.enqueue(event_id=new_id())
    assert await outbox.enqueue(event_id=event_id) == event_id
    deliverer = outbox.deliverer(receiver.clock)
    assert await deliverer.deliver_one()
    assert not await deliverer.deliver_one()
    assert receiver.posts == 1
    assert list(receiver.effects) == [event_id]


async def test_a_redelivered_event_has_one_effect_at_the_receiver(
    outbox: Outbox, receiver: Receiver
) -> None:
    """The answer to a received delivery can be lost; the event id makes it harmless."""
    event_id = await outbox.enqueue()
    deliverer = outbox.deliverer(receiver.clock)
    assert await deliverer.deliver_one()
    # As if the 2xx were lost: the same delivery goes out again.
    async with outbox.database.write() as session:
        await session.execute(
            WEBHOOK_DELIVERIES.update()
            .where(WEBHOOK_DELIVERIES.c.event_id == event_id)
            .values(state=DeliveryState.PENDING)
        )
    assert await deliverer.deliver_one()
    assert receiver.posts == 2
    assert list(receiver.effects) == [event_id]


async def test_a_rotated_secret_signs_from_then_on(outbox: Outbox, receiver: Receiver) -> None:
    async with outbox.database.write() as session:
        old = receiver.secret
        new = await outbox.webhooks.register(session, outbox.mini_app_id, receiver.url)
    assert new != old
    receiver.secret = old  # the receiver still expects the old secret: refused
    event_id = await outbox.enqueue()
    deliverer = outbox.deliverer(receiver.clock)
    assert await deliverer.deliver_one()
    assert receiver.refused_signatures == 1
    assert await outbox.state(event_id) == (DeliveryState.PENDING, 1, "HTTP 401")


async def test_deliverers_on_several_replicas_share_the_work_without_doubling_it(
    outbox: Outbox, receiver: Receiver
) -> None:
    events = [await outbox.enqueue() for _ in range(6)]
    deliverers = [outbox.deliverer(receiver.clock) for _ in range(3)]

    async def drain(deliverer: WebhookDeliverer) -> None:
        while await deliverer.deliver_one():
            pass

    await asyncio.gather(*(drain(d) for d in deliverers))
    assert receiver.posts == len(events)
    assert sorted(receiver.effects) == sorted(events)


@pytest.mark.parametrize(
    "url",
    ["http://example.com/hook", "ftp://example.com/x", "https:///nohost", "https://u:p@e.com/h"],
)
def test_a_webhook_url_must_be_https_or_local_http(url: str) -> None:
    with pytest.raises(InvalidArgument):
        checked_webhook_url(url)


def test_https_and_local_http_are_accepted() -> None:
    assert checked_webhook_url("https://bills.example.com/hook")
    assert checked_webhook_url("http://127.0.0.1:8080/hook")
