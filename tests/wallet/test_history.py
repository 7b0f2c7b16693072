"""Transaction history: newest first, paged by cursor, stable while money moves."""

from __future__ import annotations

import grpc
import pytest
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import wallet_service_pb2 as pb

from tests.services.rich_errors import rich_error
from tests.wallet.conftest import Account, Bank, eur


async def _send(bank: Bank, source: Account, target: Account, amount: int) -> str:
    return (await bank.transfer(source, target, amount)).transaction_id


async def test_pages_walk_the_history_once_while_new_transfers_land(bank: Bank) -> None:
    ann, bob = await bank.user("ann"), await bank.user("bob")
    await bank.fund(ann, 100_000)
    sent = [await _send(bank, ann, bob, amount) for amount in range(1, 13)]

    seen: list[pb.Transaction] = []
    token = ""
    while True:
        page = await bank.stub.ListTransactions(
            pb.ListTransactionsRequest(user_id=bob.user_id, page_size=5, page_token=token),
            metadata=bob.auth,
        )
        seen.extend(page.transactions)
        # Money keeps moving between pages; the walk is not disturbed by it.
        await _send(bank, ann, bob, 1_000)
        token = page.next_page_token
        if not token:
            break
    assert [t.transaction_id for t in seen] == sent[::-1]
    assert all(t.viewer_user_id == bob.user_id for t in seen)
    assert seen[0].amount == eur(12)
    assert seen[0].counterparty_user_id == ann.user_id

    newest = await bank.stub.ListTransactions(
        pb.ListTransactionsRequest(user_id=ann.user_id, page_size=1), metadata=ann.auth
    )
    assert newest.transactions[0].amount == eur(-1_000)


async def test_history_filters_by_currency_and_rejects_foreign_tokens(bank: Bank) -> None:
    ann = await bank.user("ann")
    await bank.fund(ann, 100)
    await bank.fund(ann, 200, currency="USD")
    usd = await bank.stub.ListTransactions(
        pb.ListTransactionsRequest(user_id=ann.user_id, currency_code="USD"), metadata=ann.auth
    )
    assert [t.amount for t in usd.transactions] == [Money(currency_code="USD", amount_minor=200)]
    everything = await bank.stub.ListTransactions(
        pb.ListTransactionsRequest(user_id=ann.user_id, page_size=1), metadata=ann.auth
    )
    assert everything.next_page_token
    # A token only continues the listing it came from.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bank.stub.ListTransactions(
            pb.ListTransactionsRequest(
                user_id=ann.user_id, currency_code="EUR", page_token=everything.next_page_token
            ),
            metadata=ann.auth,
        )
    refusal = rich_error(caught.value)
    assert (refusal.code, refusal.info.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )
    wallet = await bank.wallet_of(ann)
    assert [(b.currency_code, b.available_minor) for b in wallet.balances] == [
        ("EUR", 100),
        ("USD", 200),
    ]
