"""The wallet's business metrics count what users did, once: wallets opened, money moved
by kind, each user's first top-up, and the refusals of the ledger's money rules."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from superapp.wallet.v1 import wallet_service_pb2 as pb
from superapp.wallet.v1 import wallet_service_pb2_grpc

from services.runtime.ids import new_id
from services.runtime.metrics import Metrics
from services.wallet.server import create_server
from tests.services.rich_errors import rich_error
from tests.wallet.conftest import Bank, eur


def _stage(metrics: Metrics, stage: str) -> float:
    return metrics.value("superapp_signup_funnel_total", {"stage": stage})


def _moved(metrics: Metrics, kind: str, currency: str = "EUR") -> float:
    return metrics.value("superapp_money_moved_minor_total", {"currency": currency, "kind": kind})


async def test_each_wallet_the_event_opens_counts_once(bank: Bank) -> None:
    await bank.wallet_of(bank.admin)
    await bank.user("ann")
    await bank.user("bob")

    # The admin's, Ann's and Bob's; identity's own registered stage is not the wallet's.
    assert _stage(bank.service.metrics, "wallet_opened") == 3
    assert _stage(bank.service.metrics, "registered") == 0


async def test_the_first_top_up_counts_once_and_every_top_up_moves_money(bank: Bank) -> None:
    ann = await bank.user("ann")
    metrics = bank.service.metrics
    assert _stage(metrics, "first_top_up") == 0
    first = pb.CreditWalletRequest(user_id=ann.user_id, amount=eur(500), request_id=new_id())

    await bank.stub.CreditWallet(first, metadata=bank.admin.auth)
    await bank.stub.CreditWallet(first, metadata=bank.admin.auth)  # a retry: replayed
    await bank.fund(ann, 300)

    assert _stage(metrics, "first_top_up") == 1
    assert _moved(metrics, "top_up") == 800
    assert await bank.balance(ann) == (800, 0)


async def test_transfers_captures_and_refusals(bank: Bank) -> None:
    ann, bob = await bank.user("ann"), await bank.user("bob")
    await bank.fund(ann, 1_000)
    metrics = bank.service.metrics

    await bank.transfer(ann, bob, 400)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await bank.transfer(ann, bob, 601)
    hold = await bank.stub.CreateHold(
        pb.CreateHoldRequest(user_id=ann.user_id, amount=eur(300), request_id=new_id()),
        metadata=ann.auth,
    )
    await bank.stub.CaptureHold(
        pb.CaptureHoldRequest(
            hold_id=hold.hold.hold_id,
            to_user_id=bob.user_id,
            amount=eur(250),
            request_id=new_id(),
        ),
        metadata=ann.auth,
    )

    assert rich_error(refused.value).info.reason == "INSUFFICIENT_FUNDS"
    assert metrics.value("superapp_wallet_refusals_total", {"reason": "INSUFFICIENT_FUNDS"}) == 1
    assert _moved(metrics, "transfer") == 400
    assert _moved(metrics, "capture") == 250
    assert _moved(metrics, "top_up") == 1_000
    assert await bank.balance(bob) == (650, 0)


async def test_a_first_top_up_counts_once_across_replicas(bank: Bank) -> None:
    ann = await bank.user("ann")
    replica = await create_server(bank.settings, bank.tracer_provider)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}")
    stubs = [bank.stub, wallet_service_pb2_grpc.WalletServiceStub(channel)]
    try:

        async def credit(index: int) -> None:
            await stubs[index % 2].CreditWallet(
                pb.CreditWalletRequest(user_id=ann.user_id, amount=eur(10), request_id=new_id()),
                metadata=bank.admin.auth,
            )

        await asyncio.gather(*(credit(i) for i in range(10)))

        both = [bank.service.metrics, replica.metrics]
        assert sum(_stage(metrics, "first_top_up") for metrics in both) == 1
        assert sum(_moved(metrics, "top_up") for metrics in both) == 100
    finally:
        await channel.close()
        await replica.stop(0)
