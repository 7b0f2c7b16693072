"""Top-ups and transfers through the RPCs, as a client sees them."""

from __future__ import annotations

import grpc
import pytest
from superapp.wallet.v1 import wallet_service_pb2 as pb

from services.runtime.ids import new_id
from services.wallet.ledger import BALANCE_LIMIT
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


async def test_a_balance_past_the_ledgers_bound_is_refused_and_leaves_no_trace(
    bank: Bank,
) -> None:
    rich, payer = await bank.user("rich"), await bank.user("payer")
    await bank.fund(rich, 1)
    await bank.fund(payer, 1_000)
    # Reaching the bound by top-ups would take thousands of the largest ones: start near it.
    await bank.rewrite(
        "UPDATE accounts SET posted_minor = :near WHERE owner = :owner",
        near=BALANCE_LIMIT - 500,
        owner=rich.user_id,
    )
    transactions = await bank.scalar("SELECT count(*) FROM ledger_transactions")
    credit = pb.CreditWalletRequest(user_id=rich.user_id, amount=eur(501), request_id=new_id())
    transfer = pb.CreateTransferRequest(
        from_user_id=payer.user_id, to_user_id=rich.user_id, amount=eur(501), request_id=new_id()
    )

    for call, request, auth in [
        (bank.stub.CreditWallet, credit, bank.admin.auth),
        (bank.stub.CreateTransfer, transfer, payer.auth),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request, metadata=auth)  # type: ignore[operator]
        error = rich_error(caught.value)
        assert error.code == grpc.StatusCode.FAILED_PRECONDITION
        assert error.info.reason == "BALANCE_LIMIT_EXCEEDED"

    assert await bank.balance(rich) == (BALANCE_LIMIT - 500, 0)
    assert await bank.balance(payer) == (1_000, 0)
    assert await bank.scalar("SELECT count(*) FROM ledger_transactions") == transactions
    # Up to the bound itself is fine.
    await bank.transfer(payer, rich, 500)
    assert await bank.balance(rich) == (BALANCE_LIMIT, 0)
