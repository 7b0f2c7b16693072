"""The webhook outbox and its deliverer, against a real HTTP receiver on 127.0.0.1:0
that verifies each delivery's signature and counts them (and fails the first N on
request), on both database backends. Time is a clock the test moves by hand, so the
backoff is passed over rather than waited for."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.miniapps.models import WEBHOOK_DELIVERIES
from services.miniapps.webhook_delivery import WebhookDeliverer
from services.miniapps.webhooks import DeliveryState, checked_webhook_url
from services.runtime.errors import InvalidArgument
from services.runtime.ids import new_id
from tests.miniapps.webhook_receiver import MAX_ATTEMPTS, Outbox, Receiver


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


async def test_a_running_deliverer_sends_what_it_is_woken_for(
    outbox: Outbox, receiver: Receiver
) -> None:
    deliverer = outbox.deliverer(receiver.clock)
    deliverer.start()
    try:
        event_id = await outbox.enqueue()
        deliverer.wake()
        await asyncio.wait_for(receiver.received.wait(), 30)
        # The POST is answered before the attempt is recorded: wait for the row too.
        async with asyncio.timeout(30):
            while (await outbox.state(event_id))[0] != DeliveryState.DELIVERED:  # noqa: ASYNC110 - the state is in the database, there is no event to await
                await asyncio.sleep(0.05)
    finally:
        await deliverer.close()
    assert await outbox.state(event_id) == (DeliveryState.DELIVERED, 1, "")


async def test_a_claim_of_a_deliverer_that_died_lapses_and_its_late_record_is_ignored(
    outbox: Outbox, receiver: Receiver
) -> None:
    event_id = await outbox.enqueue()
    dead, alive = outbox.deliverer(receiver.clock), outbox.deliverer(receiver.clock)
    # The first deliverer claims the delivery, then stops before sending it.
    assert await dead._claim() is not None  # the half of a round a crash leaves
    assert not await alive.deliver_one()  # the claim holds for its lease
    receiver.clock.time += timedelta(seconds=31)
    assert await alive.deliver_one()
    # Whatever the first one records afterwards changes nothing: the claim is no longer its.
    await dead._record(event_id, 1, "HTTP 500")
    assert await outbox.state(event_id) == (DeliveryState.DELIVERED, 1, "")
    assert receiver.posts == 1
