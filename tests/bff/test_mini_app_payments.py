"""Payment requests over HTTP: a mini-app's backend asks with its token at
`/v1/mini-app-api/payment-requests`, the shell shows the request to its user, who
confirms or declines it at `/v1/me/payment-requests/{id}/...`; the developer sets the
webhook endpoint. Errors are problem+json with the services' reasons."""

from __future__ import annotations

from typing import Any

import httpx

from services.runtime.ids import new_id
from tests.bff.conftest import Platform, Session, assert_problem, available, sign_up, wallet_of
from tests.miniapps.payment_stack import MiniApp, funded_user, published_mini_app

ASK = "/v1/mini-app-api/payment-requests"


def _bearer(token: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def _bill(merchant: Session, amount_minor: int = 1250) -> dict[str, Any]:
    return {
        "merchant_id": merchant.user_id,
        "amount": {"currency_code": "EUR", "amount_minor": amount_minor},
        "description": "Electricity, November",
    }


async def _balance(http: httpx.AsyncClient, session: Session) -> int:
    return available(await wallet_of(http, session))[0]


async def _rotated_over_http(http: httpx.AsyncClient, app: MiniApp) -> None:
    """The developer sets the endpoint again over HTTP: a new secret, shown once."""
    key = new_id()
    body = {"url": app.receiver.url}
    reply = await http.post(
        f"/v1/developer/mini-apps/{app.mini_app_id}/webhook-endpoint",
        json=body,
        headers=app.developer.writing(key),
    )
    assert reply.status_code == 200, reply.text
    endpoint = reply.json()
    assert endpoint["url"] == app.receiver.url
    assert endpoint["signing_secret"].startswith("whsec_")
    assert endpoint["signing_secret"] != app.receiver.secret
    app.receiver.secret = endpoint["signing_secret"]
    replay = await http.post(
        f"/v1/developer/mini-apps/{app.mini_app_id}/webhook-endpoint",
        json=body,
        headers=app.developer.writing(key),
    )
    assert replay.status_code == 200, replay.text
    assert replay.json()["signing_secret"] is None
    # Only its developer may set it.
    stranger = await sign_up(http, "stranger")
    assert_problem(
        await http.post(
            f"/v1/developer/mini-apps/{app.mini_app_id}/webhook-endpoint",
            json={"url": "https://evil.example.com/hook"},
            headers=stranger.writing(),
        ),
        403,
        "PERMISSION_DENIED",
    )
    assert_problem(
        await http.post(
            f"/v1/developer/mini-apps/{app.mini_app_id}/webhook-endpoint",
            json={"url": "http://evil.example.com/hook"},
            headers=app.developer.writing(),
        ),
        400,
        "INVALID_ARGUMENT",
    )


async def test_a_mini_app_asks_the_user_confirms_and_the_mini_app_is_told(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    async with published_mini_app(client, platform) as app:
        await _rotated_over_http(client, app)
        payer = await funded_user(client, "payer", 5000)
        merchant = await funded_user(client, "merchant", 0)
        token = await app.token(payer)

        key = new_id()
        asked = await client.post(ASK, json=_bill(merchant), headers=_bearer(token, key))
        assert asked.status_code == 201, asked.text
        request = asked.json()
        assert request["state"] == "AWAITING_CONFIRMATION"
        assert request["amount"] == {"currency_code": "EUR", "amount_minor": 1250}
        assert payer.user_id not in asked.text
        assert asked.headers["cache-control"] == "no-store"
        again = await client.post(ASK, json=_bill(merchant), headers=_bearer(token, key))
        assert again.json()["payment_request_id"] == request["payment_request_id"]
        assert_problem(
            await client.post(ASK, json=_bill(merchant, 99), headers=_bearer(token, key)),
            422,
            "IDEMPOTENCY_KEY_REUSED",
        )
        assert await _balance(client, payer) == 5000

        mine = f"/v1/me/payment-requests/{request['payment_request_id']}"
        shown = await client.get(mine, headers=payer.auth)
        assert shown.status_code == 200, shown.text
        assert shown.json()["description"] == "Electricity, November"
        stranger = await sign_up(client, "stranger")
        assert_problem(
            await client.get(mine, headers=stranger.auth), 404, "PAYMENT_REQUEST_NOT_FOUND"
        )
        assert_problem(
            await client.post(f"{mine}/confirm", headers=stranger.auth),
            404,
            "PAYMENT_REQUEST_NOT_FOUND",
        )
        # The mini-app's token is no user's: it cannot confirm.
        refused = await client.post(f"{mine}/confirm", headers=_bearer(token))
        assert refused.status_code == 401, refused.text
        assert await _balance(client, payer) == 5000

        confirmed = await client.post(f"{mine}/confirm", headers=payer.auth)
        assert confirmed.status_code == 200, confirmed.text
        paid = confirmed.json()
        assert paid["state"] == "SUCCEEDED", paid
        assert paid["order_id"]
        assert paid["confirm_time"]
        again = await client.post(f"{mine}/confirm", headers=payer.auth)
        assert (again.json()["state"], again.json()["order_id"]) == ("SUCCEEDED", paid["order_id"])
        assert await _balance(client, payer) == 5000 - 1250
        assert await _balance(client, merchant) == 1250

        order = await client.get(f"/v1/me/orders/{paid['order_id']}", headers=payer.auth)
        assert order.status_code == 200, order.text
        assert order.json()["status"] == "COMPLETED"

        polled = await client.get(f"{ASK}/{request['payment_request_id']}", headers=_bearer(token))
        assert polled.status_code == 200, polled.text
        assert (polled.json()["state"], polled.json()["order_id"]) == (
            "SUCCEEDED",
            paid["order_id"],
        )
        assert sorted(await app.events(request["payment_request_id"], 2)) == [
            "payment_request.confirmed",
            "payment_request.succeeded",
        ]
        assert app.receiver.refused_signatures == 0  # signed with the rotated secret


async def test_refusals_are_problems(client: httpx.AsyncClient, platform: Platform) -> None:
    async with published_mini_app(client, platform) as app:
        payer = await funded_user(client, "payer", 0)
        merchant = await funded_user(client, "merchant", 0)
        token = await app.token(payer)
        # A user's token on the mini-app API; a token without wallet.pay.
        assert_problem(
            await client.post(
                ASK, json=_bill(merchant), headers={**payer.auth, "Idempotency-Key": new_id()}
            ),
            401,
            "MINI_APP_TOKEN_REQUIRED",
        )
        reader = await app.token(await sign_up(client, "reader"), ["profile.basic"])
        assert_problem(
            await client.post(ASK, json=_bill(merchant), headers=_bearer(reader, new_id())),
            403,
            "SCOPE_NOT_GRANTED",
        )
        # Bad input, field by field.
        bad = await client.post(
            ASK,
            json={"merchant_id": "x", "amount": {"currency_code": "EUR", "amount_minor": 0}},
            headers=_bearer(token, new_id()),
        )
        assert bad.status_code == 400, bad.text
        assert bad.headers["content-type"] == "application/problem+json"
        # Paying one's own account is refused by miniapps.
        assert_problem(
            await client.post(ASK, json=_bill(payer), headers=_bearer(token, new_id())),
            400,
            "INVALID_ARGUMENT",
        )
        assert_problem(
            await client.get(f"{ASK}/{new_id()}", headers=_bearer(token)),
            404,
            "PAYMENT_REQUEST_NOT_FOUND",
        )

        # Declined: nothing is paid, and it cannot be confirmed after.
        asked = await client.post(ASK, json=_bill(merchant), headers=_bearer(token, new_id()))
        mine = f"/v1/me/payment-requests/{asked.json()['payment_request_id']}"
        declined = await client.post(f"{mine}/decline", headers=payer.auth)
        assert declined.status_code == 200, declined.text
        assert declined.json()["state"] == "DECLINED"
        assert_problem(
            await client.post(f"{mine}/confirm", headers=payer.auth),
            400,
            "PAYMENT_REQUEST_DECLINED",
        )
        # Without the funds: FAILED, with the wallet's reason.
        asked = await client.post(ASK, json=_bill(merchant), headers=_bearer(token, new_id()))
        mine = f"/v1/me/payment-requests/{asked.json()['payment_request_id']}"
        failed = await client.post(f"{mine}/confirm", headers=payer.auth)
        assert failed.status_code == 200, failed.text
        assert (failed.json()["state"], failed.json()["failure_reason"]) == (
            "FAILED",
            "INSUFFICIENT_FUNDS",
        )
        assert_problem(
            await client.post(f"{mine}/decline", headers=payer.auth),
            400,
            "PAYMENT_REQUEST_ALREADY_CONFIRMED",
        )
