"""Top-ups and transfers through the RPCs, as a client sees them."""

from __future__ import annotations

import grpc
import pytest
from superapp.wallet.v1 import wallet_service_pb2 as pb

from services.runtime.ids import new_id
from tests.services.rich_errors import rich_error
from tests.wallet.conftest import Bank, eur


async def test_top_up_then_transfer_moves_money_between_wallets(bank: Bank) -> None:
    ann, bob = await bank.user("ann"), await bank.user("bob")
    assert (await bank.wallet_of(ann)).balances == []

    credited = await bank.stub.CreditWallet(
        pb.CreditWalletRequest(
            user_id=ann.user_id, amount=eur(10_000), description="top-up", request_id=new_id()
        ),
        metadata=bank.admin.auth,
    )
    top_up = credited.transaction
    assert top_up.kind == pb.TRANSACTION_KIND_CREDIT
    assert top_up.viewer_user_id == ann.user_id
    assert top_up.amount == eur(10_000)
    assert top_up.counterparty_system_account == pb.SYSTEM_ACCOUNT_FUNDING
    assert sum(p.amount.amount_minor for p in top_up.postings) == 0

    sent = await bank.stub.CreateTransfer(
        pb.CreateTransferRequest(
            from_user_id=ann.user_id,
            to_user_id=bob.user_id,
            amount=eur(2_500),
            description="lunch",
            request_id=new_id(),
        ),
        metadata=ann.auth,
    )
    transfer = sent.transaction
    assert transfer.kind == pb.TRANSACTION_KIND_TRANSFER
    assert transfer.amount == eur(-2_500)
    assert transfer.counterparty_user_id == bob.user_id
    assert [(p.user_id, p.amount.amount_minor) for p in transfer.postings] == [
        (ann.user_id, -2_500),
        (bob.user_id, 2_500),
    ]
    assert await bank.balance(ann) == (7_500, 0)
    assert await bank.balance(bob) == (2_500, 0)


async def test_overdraft_is_refused_and_leaves_no_trace(bank: Bank) -> None:
    ann, bob = await bank.user("ann"), await bank.user("bob")
    await bank.fund(ann, 1_000)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bank.stub.CreateTransfer(
            pb.CreateTransferRequest(
                from_user_id=ann.user_id,
                to_user_id=bob.user_id,
                amount=eur(1_001),
                request_id=new_id(),
            ),
            metadata=ann.auth,
        )
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.info.reason == "INSUFFICIENT_FUNDS"
    assert dict(error.info.metadata) == {"currency_code": "EUR", "available_minor": "1000"}
    assert await bank.balance(ann) == (1_000, 0)
    assert await bank.balance(bob) == (0, 0)
    assert await bank.scalar("SELECT count(*) FROM ledger_transactions") == 1
