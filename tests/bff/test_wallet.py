"""Balances, top-ups, transfers and history through the BFF."""

from __future__ import annotations

import httpx

from services.runtime.ids import new_id
from tests.bff.conftest import (
    admin_session,
    assert_problem,
    available,
    sign_up,
    top_up,
    wallet_of,
)


async def test_wallet_opens_after_sign_up_and_admin_tops_it_up(client: httpx.AsyncClient) -> None:
    ann = await sign_up(client)
    admin = await admin_session(client)

    wallet = await wallet_of(client, ann)
    assert wallet["user_id"] == ann.user_id
    assert wallet["balances"] == []

    credit = (await top_up(client, admin, ann, 5_000)).json()
    assert credit["kind"] == "CREDIT"
    assert credit["amount"] == {"currency_code": "EUR", "amount_minor": 5_000}
    assert credit["counterparty_system_account"] == "FUNDING"
    assert available(await wallet_of(client, ann)) == (5_000, 0)


async def test_top_up_retried_with_its_key_credits_once(client: httpx.AsyncClient) -> None:
    ann = await sign_up(client)
    admin = await admin_session(client)
    await wallet_of(client, ann)
    headers = admin.writing()
    body = {"amount": {"currency_code": "EUR", "amount_minor": 700}, "description": "gift"}

    replies = [
        await client.post(f"/v1/admin/wallets/{ann.user_id}/top-ups", json=body, headers=headers)
        for _ in range(3)
    ]

    assert {reply.status_code for reply in replies} == {201}
    assert len({reply.json()["transaction_id"] for reply in replies}) == 1
    assert available(await wallet_of(client, ann)) == (700, 0)


async def test_transfer_and_history_pages(client: httpx.AsyncClient) -> None:
    ann = await sign_up(client, "ann")
    bob = await sign_up(client, "bob")
    admin = await admin_session(client)
    await wallet_of(client, bob)
    await wallet_of(client, ann)
    await top_up(client, admin, ann, 10_000)

    for cents in (100, 200, 300):
        sent = await client.post(
            "/v1/me/wallet/transfers",
            json={
                "to_user_id": bob.user_id,
                "amount": {"currency_code": "EUR", "amount_minor": cents},
                "description": f"lunch {cents}",
            },
            headers=ann.writing(),
        )
        assert sent.status_code == 201, sent.text
        assert sent.json()["amount"]["amount_minor"] == -cents
        assert sent.json()["counterparty_user_id"] == bob.user_id

    assert available(await wallet_of(client, ann)) == (9_400, 0)
    assert available(await wallet_of(client, bob)) == (600, 0)
    seen: list[int] = []
    token: str | None = None
    while True:
        params = {"page_size": 2, **({"page_token": token} if token else {})}
        page = await client.get("/v1/me/wallet/transactions", params=params, headers=ann.auth)
        assert page.status_code == 200, page.text
        seen += [t["amount"]["amount_minor"] for t in page.json()["transactions"]]
        token = page.json()["next_page_token"]
        if token is None:
            break
    assert seen == [-300, -200, -100, 10_000]  # newest first, each exactly once
    bobs = (await client.get("/v1/me/wallet/transactions", headers=bob.auth)).json()
    assert [t["amount"]["amount_minor"] for t in bobs["transactions"]] == [300, 200, 100]


async def test_wallet_refusals_map_to_problems(client: httpx.AsyncClient) -> None:
    ann = await sign_up(client, "ann")
    bob = await sign_up(client, "bob")
    await wallet_of(client, ann)
    await wallet_of(client, bob)

    def transfer(amount: int, to: str = bob.user_id, currency: str = "EUR") -> dict[str, object]:
        return {"to_user_id": to, "amount": {"currency_code": currency, "amount_minor": amount}}

    poor = await client.post("/v1/me/wallet/transfers", json=transfer(1), headers=ann.writing())
    body = assert_problem(poor, 400, "INSUFFICIENT_FUNDS")
    assert body["domain"] == "wallet.superapp"
    assert body["metadata"]["available_minor"] == "0"

    to_self = await client.post(
        "/v1/me/wallet/transfers", json=transfer(1, ann.user_id), headers=ann.writing()
    )
    body = assert_problem(to_self, 400, "SELF_TRANSFER")
    assert [v["field"] for v in body["violations"]] == ["to_user_id"]

    nobody = await client.post(
        "/v1/me/wallet/transfers", json=transfer(1, new_id()), headers=ann.writing()
    )
    assert_problem(nobody, 404, "WALLET_NOT_FOUND")

    fake_currency = await client.post(
        "/v1/me/wallet/transfers", json=transfer(1, currency="ZZZ"), headers=ann.writing()
    )
    body = assert_problem(fake_currency, 400, "INVALID_CURRENCY")
    assert [v["field"] for v in body["violations"]] == ["amount.currency_code"]

    bad_token = await client.get(
        "/v1/me/wallet/transactions", params={"page_token": "garbage"}, headers=ann.auth
    )
    assert bad_token.status_code == 400
    body = bad_token.json()
    # The upstream reason is passed on as it is.
    assert body["reason"] == "INVALID_PAGE_TOKEN"
    assert body["domain"] == "wallet.superapp"
    assert [v["field"] for v in body["violations"]] == ["page_token"]

    too_big = await client.get(
        "/v1/me/wallet/transactions", params={"page_size": 101}, headers=ann.auth
    )
    body = assert_problem(too_big, 400, "INVALID_ARGUMENT")
    assert [v["field"] for v in body["violations"]] == ["page_size"]
