"""Miniapps without client credentials of its own (no MINIAPPS_CLIENT_SECRET): it cannot
ask identity about mini-app tokens nor pay through orders, and says so plainly instead
of failing later or half-way."""

from __future__ import annotations

import base64
import json

import grpc
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from services.runtime.ids import new_id
from tests.miniapps.conftest import Platform
from tests.services.rich_errors import failure


def _segment(value: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


async def test_mini_app_tokens_and_confirmations_are_refused_clearly(platform: Platform) -> None:
    assert platform.settings.client_secret is None
    # Anything that says it is a mini-app token: this deployment cannot check one.
    token = ".".join(
        (_segment({"alg": "EdDSA", "typ": "miniapp+jwt", "kid": "k"}), _segment({}), "c2ln")
    )
    refused = await failure(
        platform.stub.CreatePaymentRequest(
            pb.CreatePaymentRequestRequest(
                merchant_id=new_id(),
                amount={"currency_code": "EUR", "amount_minor": 100},
                description="Water",
                idempotency_key=new_id(),
            ),
            metadata=(("authorization", f"Bearer {token}"),),
        )
    )
    assert (refused.code, refused.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "MINI_APP_TOKENS_NOT_CONFIGURED",
    )
    _, user = await platform.person()
    refused = await failure(
        platform.stub.ConfirmPaymentRequest(
            pb.ConfirmPaymentRequestRequest(payment_request_id=new_id()), metadata=user
        )
    )
    assert (refused.code, refused.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PAYMENTS_NOT_CONFIGURED",
    )
    # A user's token on the mini-app RPC is the wrong kind, whatever the configuration.
    refused = await failure(
        platform.stub.CreatePaymentRequest(
            pb.CreatePaymentRequestRequest(
                merchant_id=new_id(),
                amount={"currency_code": "EUR", "amount_minor": 100},
                description="Water",
                idempotency_key=new_id(),
            ),
            metadata=user,
        )
    )
    assert (refused.code, refused.info.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "MINI_APP_TOKEN_REQUIRED",
    )
