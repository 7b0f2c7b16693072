"""Payments from a mini-app over gRPC, end to end on real servers: a published mini-app's
backend asks with its token, the user confirms with theirs, orders holds and captures
the money, the mini-app hears the outcome by a signed webhook and by asking. Miniapps
runs on each database backend; the other services on SQLite.

No money moves without the user's confirmation, nobody else can confirm, a replayed
confirmation or webhook has one effect, a suspended mini-app is refused, and a payment
the wallet cannot cover fails and says so."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from superapp.miniapps.v1 import miniapps_service_pb2 as pb
from superapp.orders.v1 import orders_service_pb2 as orders_pb

from services.runtime.ids import new_id
from tests.bff.conftest import Platform, Session, available, sign_up, wallet_of
from tests.miniapps.payment_stack import (
    BACKENDS,
    MiniApp,
    eventually,
    funded_user,
    grpc_auth,
    payment_platform,
    published_mini_app,
)
from tests.services.rich_errors import failure

pytestmark = pytest.mark.slow(seconds=30)


@pytest.fixture(scope="module", params=BACKENDS)
async def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    async with payment_platform(request, tmp_path_factory) as it:
        yield it


@pytest.fixture
async def http(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with platform.client() as client:
        yield client


@pytest.fixture
async def app(http: httpx.AsyncClient, platform: Platform) -> AsyncIterator[MiniApp]:
    async with published_mini_app(http, platform) as it:
        yield it


def _user(session: Session) -> tuple[tuple[str, str], ...]:
    return grpc_auth(session.access_token)


async def _balance(http: httpx.AsyncClient, session: Session) -> int:
    return available(await wallet_of(http, session))[0]


async def _state(app: MiniApp, token: str, payment_request_id: str) -> pb.PaymentRequest:
    reply = await app.stub.GetPaymentRequest(
        pb.GetPaymentRequestRequest(payment_request_id=payment_request_id),
        metadata=grpc_auth(token),
    )
    return reply.payment_request


async def test_the_lifecycle_pays_only_after_the_users_confirmation(
    http: httpx.AsyncClient, app: MiniApp
) -> None:
    payer = await funded_user(http, "payer", 5000)
    merchant = await funded_user(http, "merchant", 0)
    token = await app.token(payer)

    asked = await app.ask(token, merchant, 1250, key="bill-2026-11")
    assert asked.state == pb.PAYMENT_REQUEST_STATE_AWAITING_CONFIRMATION
    assert asked.mini_app_id == app.mini_app_id
    assert (asked.amount.currency_code, asked.amount.amount_minor) == ("EUR", 1250)
    # The mini-app knows the user by the pairwise subject, never by the real id.
    assert asked.subject
    assert payer.user_id not in str(asked)
    # The backend's retry under its key is the same request.
    again = await app.ask(token, merchant, 1250, key="bill-2026-11")
    assert again.payment_request_id == asked.payment_request_id
    # Asking moves nothing.
    assert await _balance(http, payer) == 5000
    seen = await app.stub.GetPaymentRequest(
        pb.GetPaymentRequestRequest(payment_request_id=asked.payment_request_id),
        metadata=_user(payer),
    )
    assert seen.payment_request.description == "Electricity, November"

    # Nobody else can confirm it, nor learn that it exists.
    stranger = await sign_up(http, "stranger")
    refused = await failure(
        app.stub.ConfirmPaymentRequest(
            pb.ConfirmPaymentRequestRequest(payment_request_id=asked.payment_request_id),
            metadata=_user(stranger),
        )
    )
    assert (refused.code, refused.info.reason) == (
        grpc.StatusCode.NOT_FOUND,
        "PAYMENT_REQUEST_NOT_FOUND",
    )
    # The mini-app itself cannot confirm for the user.
    refused = await failure(
        app.stub.ConfirmPaymentRequest(
            pb.ConfirmPaymentRequestRequest(payment_request_id=asked.payment_request_id),
            metadata=grpc_auth(token),
        )
    )
    assert (refused.code, refused.info.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "USER_TOKEN_REQUIRED",
    )
    assert await _balance(http, payer) == 5000

    confirmed = await app.stub.ConfirmPaymentRequest(
        pb.ConfirmPaymentRequestRequest(payment_request_id=asked.payment_request_id),
        metadata=_user(payer),
    )
    paid = confirmed.payment_request
    assert paid.state == pb.PAYMENT_REQUEST_STATE_SUCCEEDED, paid
    assert paid.order_id
    assert paid.HasField("confirm_time")
    assert await _balance(http, payer) == 5000 - 1250
    assert await _balance(http, merchant) == 1250

    # A replayed confirmation answers the same and pays nothing more.
    replay = await app.stub.ConfirmPaymentRequest(
        pb.ConfirmPaymentRequestRequest(payment_request_id=asked.payment_request_id),
        metadata=_user(payer),
    )
    assert (replay.payment_request.state, replay.payment_request.order_id) == (
        pb.PAYMENT_REQUEST_STATE_SUCCEEDED,
        paid.order_id,
    )
    assert await _balance(http, payer) == 5000 - 1250

    # The order is the user's, and says what it paid for.
    order = (
        await app.orders.GetOrder(
            orders_pb.GetOrderRequest(order_id=paid.order_id), metadata=_user(payer)
        )
    ).order
    assert order.status == orders_pb.ORDER_STATUS_COMPLETED
    assert (order.buyer_id, order.merchant_id) == (payer.user_id, merchant.user_id)
    assert order.payment_request_id == asked.payment_request_id
    assert order.total.amount_minor == 1250

    # The mini-app hears of it by a signed webhook (checked by the receiver) and by asking.
    assert sorted(await app.events(asked.payment_request_id, 2)) == [
        "payment_request.confirmed",
        "payment_request.succeeded",
    ]
    succeeded = next(
        event
        for event in app.receiver.effects.values()
        if event["type"] == "payment_request.succeeded"
    )
    assert isinstance(succeeded["data"], dict)
    assert succeeded["data"]["order_id"] == paid.order_id
    assert payer.user_id not in str(succeeded)
    assert app.receiver.refused_signatures == 0
    polled = await _state(app, token, asked.payment_request_id)
    assert (polled.state, polled.order_id) == (pb.PAYMENT_REQUEST_STATE_SUCCEEDED, paid.order_id)


async def test_tokens_of_the_wrong_kind_scope_or_mini_app_are_refused(
    http: httpx.AsyncClient, app: MiniApp, platform: Platform
) -> None:
    payer = await funded_user(http, "payer", 0)
    merchant = await funded_user(http, "merchant", 0)
    token = await app.token(payer)
    asked = await app.ask(token, merchant, 100)

    def create(metadata: tuple[tuple[str, str], ...]) -> object:
        return app.stub.CreatePaymentRequest(
            pb.CreatePaymentRequestRequest(
                merchant_id=merchant.user_id,
                amount={"currency_code": "EUR", "amount_minor": 100},
                description="Water",
                idempotency_key=new_id(),
            ),
            metadata=metadata,
        )

    # A user's own token is not a mini-app's.
    refused = await failure(create(_user(payer)))  # type: ignore[arg-type]
    assert (refused.code, refused.info.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "MINI_APP_TOKEN_REQUIRED",
    )
    # Without wallet.pay granted, no payment requests.
    profile_only = await app.token(await sign_up(http, "reader"), ["profile.basic"])
    refused = await failure(create(grpc_auth(profile_only)))  # type: ignore[arg-type]
    assert (refused.code, refused.info.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "SCOPE_NOT_GRANTED",
    )
    # Garbage is no token.
    refused = await failure(create(grpc_auth("not-a-token")))  # type: ignore[arg-type]
    assert refused.code == grpc.StatusCode.UNAUTHENTICATED
    # Another mini-app cannot read this one's requests.
    async with published_mini_app(http, platform) as other:
        foreign = await failure(
            other.stub.GetPaymentRequest(
                pb.GetPaymentRequestRequest(payment_request_id=asked.payment_request_id),
                metadata=grpc_auth(await other.token(payer)),
            )
        )
    assert (foreign.code, foreign.info.reason) == (
        grpc.StatusCode.NOT_FOUND,
        "PAYMENT_REQUEST_NOT_FOUND",
    )
    # Bad input is named field by field.
    bad = await failure(
        app.stub.CreatePaymentRequest(
            pb.CreatePaymentRequestRequest(
                merchant_id="nope",
                amount={"currency_code": "EUR", "amount_minor": 0},
                description="",
                idempotency_key="",
            ),
            metadata=grpc_auth(token),
        )
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {field.split(".")[0] for field in bad.violations} >= {
        "merchant_id",
        "amount",
        "description",
        "idempotency_key",
    }
    # The same key with other parameters is refused, not a second request.
    reused = await failure(
        app.stub.CreatePaymentRequest(
            pb.CreatePaymentRequestRequest(
                merchant_id=merchant.user_id,
                amount={"currency_code": "EUR", "amount_minor": 999},
                description="Electricity, November",
                idempotency_key=asked.idempotency_key,
            ),
            metadata=grpc_auth(token),
        )
    )
    assert reused.info.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_insufficient_funds_fail_the_payment_and_the_mini_app_hears_it(
    http: httpx.AsyncClient, app: MiniApp
) -> None:
    payer = await funded_user(http, "poor", 300)
    merchant = await funded_user(http, "merchant", 0)
    token = await app.token(payer)
    asked = await app.ask(token, merchant, 1250)
    confirmed = await app.stub.ConfirmPaymentRequest(
        pb.ConfirmPaymentRequestRequest(payment_request_id=asked.payment_request_id),
        metadata=_user(payer),
    )
    failed = confirmed.payment_request
    assert failed.state == pb.PAYMENT_REQUEST_STATE_FAILED, failed
    assert failed.failure_reason == "INSUFFICIENT_FUNDS"
    assert await _balance(http, payer) == 300
    assert await _balance(http, merchant) == 0
    assert sorted(await app.events(asked.payment_request_id, 2)) == [
        "payment_request.confirmed",
        "payment_request.failed",
    ]
    event = next(e for e in app.receiver.effects.values() if e["type"] == "payment_request.failed")
    assert isinstance(event["data"], dict)
    assert event["data"]["failure_reason"] == "INSUFFICIENT_FUNDS"


async def test_a_declined_request_pays_nothing_and_cannot_be_confirmed(
    http: httpx.AsyncClient, app: MiniApp
) -> None:
    payer = await funded_user(http, "payer", 5000)
    merchant = await funded_user(http, "merchant", 0)
    token = await app.token(payer)
    asked = await app.ask(token, merchant, 700)
    declined = await app.stub.DeclinePaymentRequest(
        pb.DeclinePaymentRequestRequest(payment_request_id=asked.payment_request_id),
        metadata=_user(payer),
    )
    assert declined.payment_request.state == pb.PAYMENT_REQUEST_STATE_DECLINED
    refused = await failure(
        app.stub.ConfirmPaymentRequest(
            pb.ConfirmPaymentRequestRequest(payment_request_id=asked.payment_request_id),
            metadata=_user(payer),
        )
    )
    assert (refused.code, refused.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PAYMENT_REQUEST_DECLINED",
    )
    assert await _balance(http, payer) == 5000
    assert await app.events(asked.payment_request_id, 1) == ["payment_request.declined"]


async def test_a_suspended_mini_app_cannot_ask_nor_be_paid(
    http: httpx.AsyncClient, app: MiniApp
) -> None:
    payer = await funded_user(http, "payer", 5000)
    merchant = await funded_user(http, "merchant", 0)
    token = await app.token(payer)
    asked = await app.ask(token, merchant, 900)
    suspended = await app.stub.SuspendMiniApp(
        pb.SuspendMiniAppRequest(
            mini_app_id=app.mini_app_id, reason="Fraud reports", request_id=new_id()
        ),
        metadata=_user(app.reviewer),
    )
    assert suspended.mini_app.status == pb.MINI_APP_STATUS_SUSPENDED
    refused = await failure(
        app.stub.ConfirmPaymentRequest(
            pb.ConfirmPaymentRequestRequest(payment_request_id=asked.payment_request_id),
            metadata=_user(payer),
        )
    )
    assert (refused.code, refused.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "MINI_APP_SUSPENDED",
    )
    seen = await app.stub.GetPaymentRequest(
        pb.GetPaymentRequestRequest(payment_request_id=asked.payment_request_id),
        metadata=_user(payer),
    )
    assert seen.payment_request.state == pb.PAYMENT_REQUEST_STATE_AWAITING_CONFIRMATION
    assert await _balance(http, payer) == 5000
    # Its token stops working (identity says so within its 2 s cache); until then the
    # service's own check refuses the request.
    refused = await failure(
        app.stub.CreatePaymentRequest(
            pb.CreatePaymentRequestRequest(
                merchant_id=merchant.user_id,
                amount={"currency_code": "EUR", "amount_minor": 100},
                description="Water",
                idempotency_key=new_id(),
            ),
            metadata=grpc_auth(token),
        )
    )
    assert (refused.code, refused.info.reason) in (
        (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
        (grpc.StatusCode.FAILED_PRECONDITION, "MINI_APP_SUSPENDED"),
    )


async def test_a_payment_orders_could_not_finish_is_settled_later_once(
    http: httpx.AsyncClient, app: MiniApp, platform: Platform
) -> None:
    payer = await funded_user(http, "payer", 5000)
    merchant = await funded_user(http, "merchant", 0)
    token = await app.token(payer)
    asked = await app.ask(token, merchant, 1500)
    await platform.orders.stop()
    try:
        confirmed = await app.stub.ConfirmPaymentRequest(
            pb.ConfirmPaymentRequestRequest(payment_request_id=asked.payment_request_id),
            metadata=_user(payer),
        )
        # Orders is away: the confirmation stands, the payment waits.
        assert confirmed.payment_request.state == pb.PAYMENT_REQUEST_STATE_CONFIRMED
        replay = await app.stub.ConfirmPaymentRequest(
            pb.ConfirmPaymentRequestRequest(payment_request_id=asked.payment_request_id),
            metadata=_user(payer),
        )
        assert replay.payment_request.state == pb.PAYMENT_REQUEST_STATE_CONFIRMED
        assert await _balance(http, payer) == 5000
    finally:
        await platform.orders.start()

    async def settled() -> pb.PaymentRequest | None:
        found = await _state(app, token, asked.payment_request_id)
        return found if found.state == pb.PAYMENT_REQUEST_STATE_SUCCEEDED else None

    paid = await eventually(settled, "the settler pays once orders is back")
    assert paid.order_id
    assert await _balance(http, payer) == 5000 - 1500
    assert await _balance(http, merchant) == 1500
    assert sorted(await app.events(asked.payment_request_id, 2)) == [
        "payment_request.confirmed",
        "payment_request.succeeded",
    ]


async def test_a_webhook_the_receiver_failed_is_redelivered_with_one_effect(
    http: httpx.AsyncClient, app: MiniApp
) -> None:
    app.receiver.fail_first = app.receiver.posts + 2  # the next two deliveries fail
    payer = await funded_user(http, "payer", 0)
    merchant = await funded_user(http, "merchant", 0)
    token = await app.token(payer)
    asked = await app.ask(token, merchant, 500)
    await app.stub.DeclinePaymentRequest(
        pb.DeclinePaymentRequestRequest(payment_request_id=asked.payment_request_id),
        metadata=_user(payer),
    )
    # A replayed decline announces nothing new.
    await app.stub.DeclinePaymentRequest(
        pb.DeclinePaymentRequestRequest(payment_request_id=asked.payment_request_id),
        metadata=_user(payer),
    )
    assert await app.events(asked.payment_request_id, 1) == ["payment_request.declined"]
    assert app.receiver.posts >= 3  # two refused, then taken
    declined = [
        e
        for e in app.receiver.effects.values()
        if isinstance(e["data"], dict)
        and e["data"]["payment_request_id"] == asked.payment_request_id
    ]
    assert len(declined) == 1
