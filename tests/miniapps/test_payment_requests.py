"""Payment requests on both backends, with their webhooks delivered to a real receiver:
no payment without the user's confirmation, no confirmation by another user, and
replays of a confirmation or a webhook have one effect."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from services.miniapps.payment_requests import (
    NewPaymentRequest,
    PaymentRequests,
    PaymentRequestState,
)
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.runtime.ids import new_id
from tests.miniapps.webhook_receiver import Outbox, Receiver

USER = new_id()
OTHER_USER = new_id()
MERCHANT = new_id()


def _requests(outbox: Outbox, receiver: Receiver) -> PaymentRequests:
    return PaymentRequests(
        outbox.database, receiver.clock, outbox.webhooks, ttl=timedelta(minutes=15)
    )


def _asked(outbox: Outbox, **overrides: object) -> NewPaymentRequest:
    fields: dict[str, object] = {
        "mini_app_id": outbox.mini_app_id,
        "user_id": USER,
        "subject": "pairwise-subject-1",
        "merchant_id": MERCHANT,
        "currency_code": "EUR",
        "amount_minor": 1250,
        "description": "Electricity, November",
        "idempotency_key": "bill-2026-11",
    }
    fields.update(overrides)
    return NewPaymentRequest(**fields)  # type: ignore[arg-type]


async def _drain(outbox: Outbox, receiver: Receiver) -> list[dict[str, object]]:
    deliverer = outbox.deliverer(receiver.clock)
    while await deliverer.deliver_one():
        pass
    return list(receiver.effects.values())


async def test_creation_is_idempotent_per_mini_app_key(outbox: Outbox, receiver: Receiver) -> None:
    requests = _requests(outbox, receiver)
    first = await requests.create(_asked(outbox))
    again = await requests.create(_asked(outbox))
    assert again.payment_request_id == first.payment_request_id
    assert first.state is PaymentRequestState.AWAITING_CONFIRMATION
    with pytest.raises(FailedPrecondition) as reused:
        await requests.create(_asked(outbox, amount_minor=9999))
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    other_app = await outbox.add_mini_app(receiver.clock)
    elsewhere = await requests.create(_asked(outbox, mini_app_id=other_app))
    assert elsewhere.payment_request_id != first.payment_request_id
    assert await _drain(outbox, receiver) == []  # creation announces nothing


async def test_nothing_is_paid_without_the_users_confirmation(
    outbox: Outbox, receiver: Receiver
) -> None:
    requests = _requests(outbox, receiver)
    created = await requests.create(_asked(outbox))
    with pytest.raises(FailedPrecondition) as refused:
        await requests.settle(created.payment_request_id, order_id=new_id())
    assert refused.value.reason == "PAYMENT_REQUEST_NOT_CONFIRMED"
    current = await requests.for_mini_app(outbox.mini_app_id, created.payment_request_id)
    assert current.state is PaymentRequestState.AWAITING_CONFIRMATION
    assert current.order_id is None


async def test_another_user_cannot_confirm_or_see_it(outbox: Outbox, receiver: Receiver) -> None:
    requests = _requests(outbox, receiver)
    created = await requests.create(_asked(outbox))
    with pytest.raises(NotFound) as hidden:
        await requests.confirm(OTHER_USER, created.payment_request_id)
    assert hidden.value.reason == "PAYMENT_REQUEST_NOT_FOUND"
    with pytest.raises(NotFound):
        await requests.for_user(OTHER_USER, created.payment_request_id)
    current = await requests.for_user(USER, created.payment_request_id)
    assert current.state is PaymentRequestState.AWAITING_CONFIRMATION


async def test_another_mini_app_cannot_read_it(outbox: Outbox, receiver: Receiver) -> None:
    requests = _requests(outbox, receiver)
    created = await requests.create(_asked(outbox))
    other_app = await outbox.add_mini_app(receiver.clock)
    with pytest.raises(NotFound):
        await requests.for_mini_app(other_app, created.payment_request_id)


async def test_replayed_confirmations_and_settlements_have_one_effect(
    outbox: Outbox, receiver: Receiver
) -> None:
    requests = _requests(outbox, receiver)
    created = await requests.create(_asked(outbox))
    confirmed = await asyncio.gather(
        *(requests.confirm(USER, created.payment_request_id) for _ in range(4))
    )
    assert {c.state for c in confirmed} == {PaymentRequestState.CONFIRMED}
    assert len({c.confirm_time for c in confirmed}) == 1
    order_id = new_id()
    settled = await requests.settle(created.payment_request_id, order_id=order_id)
    again = await requests.settle(created.payment_request_id, order_id=new_id())
    assert settled == again
    assert settled.state is PaymentRequestState.SUCCEEDED
    assert settled.order_id == order_id
    # A confirmation replayed after the outcome changes nothing either.
    assert await requests.confirm(USER, created.payment_request_id) == settled
    events = await _drain(outbox, receiver)
    # Deliveries are not ordered (retries reorder them): each event says its state.
    assert sorted(str(e["type"]) for e in events) == [
        "payment_request.confirmed",
        "payment_request.succeeded",
    ]
    assert receiver.posts == 2


async def test_a_failed_payment_is_announced_with_its_reason(
    outbox: Outbox, receiver: Receiver
) -> None:
    requests = _requests(outbox, receiver)
    created = await requests.create(_asked(outbox))
    await requests.confirm(USER, created.payment_request_id)
    failed = await requests.settle(
        created.payment_request_id, order_id=None, failure_reason="INSUFFICIENT_FUNDS"
    )
    assert failed.state is PaymentRequestState.FAILED
    events = {e["type"]: e for e in await _drain(outbox, receiver)}
    data = events["payment_request.failed"]["data"]
    assert isinstance(data, dict)
    assert data["failure_reason"] == "INSUFFICIENT_FUNDS"


async def test_webhooks_show_the_pairwise_subject_never_the_user_id(
    outbox: Outbox, receiver: Receiver
) -> None:
    requests = _requests(outbox, receiver)
    created = await requests.create(_asked(outbox))
    await requests.confirm(USER, created.payment_request_id)
    events = await _drain(outbox, receiver)
    assert USER not in json.dumps(events)
    data = events[0]["data"]
    assert isinstance(data, dict)
    assert data["subject"] == "pairwise-subject-1"


async def test_a_late_confirmation_expires_the_request(outbox: Outbox, receiver: Receiver) -> None:
    requests = _requests(outbox, receiver)
    created = await requests.create(_asked(outbox))
    receiver.clock.time += timedelta(minutes=16)
    for _ in range(2):
        with pytest.raises(FailedPrecondition) as late:
            await requests.confirm(USER, created.payment_request_id)
        assert late.value.reason == "PAYMENT_REQUEST_EXPIRED"
    current = await requests.for_user(USER, created.payment_request_id)
    assert current.state is PaymentRequestState.EXPIRED
    events = await _drain(outbox, receiver)
    assert [e["type"] for e in events] == ["payment_request.expired"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount_minor": 0}, "amount.amount_minor"),
        ({"currency_code": "XYZ"}, "amount.currency_code"),
        ({"description": ""}, "description"),
        ({"description": "x" * 201}, "description"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"merchant_id": "not-a-uuid"}, "merchant_id"),
        ({"merchant_id": USER}, "merchant_id"),
    ],
)
async def test_bad_requests_name_their_field(
    outbox: Outbox, receiver: Receiver, overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidArgument) as bad:
        await _requests(outbox, receiver).create(_asked(outbox, **overrides))
    assert [v.field for v in bad.value.violations] == [field]
