"""The ledger's invariants under a storm of concurrent, overdrawing, retried transfers."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import grpc
import pytest
from superapp.wallet.v1 import wallet_service_pb2 as pb

from services.runtime.ids import new_id
from tests.services.rich_errors import rich_error
from tests.wallet.conftest import Account, Bank, eur

WALLETS = 20
TRANSFERS = 300
RETRIES = 3
# 900 concurrent calls through one wallet: minutes when two busy loops share the CPUs.
pytestmark = pytest.mark.timeout(600)


async def _ledger_is_balanced(bank: Bank) -> None:
    """Every transaction sums to zero, and every balance is the sum of its postings."""
    unbalanced = await bank.scalar(
        "SELECT count(*) FROM (SELECT seq FROM postings GROUP BY seq"
        " HAVING sum(amount_minor) <> 0) AS t"
    )
    assert unbalanced == 0
    drifted = await bank.scalar(
        "SELECT count(*) FROM accounts a WHERE a.posted_minor <>"
        " (SELECT coalesce(sum(p.amount_minor), 0) FROM postings p"
        " WHERE p.owner = a.owner AND p.currency_code = a.currency_code)"
    )
    assert drifted == 0
    assert (
        await bank.scalar(
            "SELECT count(*) FROM accounts WHERE posted_minor < held_minor AND NOT system"
        )
        == 0
    )


async def test_concurrent_retried_transfers_keep_every_invariant(bank: Bank) -> None:
    rng = random.Random(20261121)
    accounts = await asyncio.gather(*(bank.user(f"u{i}") for i in range(WALLETS)))
    funded = {a.user_id: rng.randrange(0, 5_000) for a in accounts}
    for account in accounts:
        if funded[account.user_id]:
            await bank.fund(account, funded[account.user_id])
    total = sum(funded.values())

    plan: list[tuple[Account, Account, int, str]] = []
    for _ in range(TRANSFERS):
        source, target = rng.sample(accounts, 2)
        # Up to 3,000 against at most 5,000 funded: many transfers overdraw.
        plan.append((source, target, rng.randrange(1, 3_000), new_id()))

    async def send(source: Account, target: Account, amount: int, request_id: str) -> object:
        request = pb.CreateTransferRequest(
            from_user_id=source.user_id,
            to_user_id=target.user_id,
            amount=eur(amount),
            request_id=request_id,
        )
        try:
            return (await bank.stub.CreateTransfer(request, metadata=source.auth)).transaction
        except grpc.aio.AioRpcError as error:
            return rich_error(error)

    negative_seen: list[int] = []
    storm_over = asyncio.Event()

    async def watch_balances() -> None:
        while not storm_over.is_set():
            for account in accounts[:5]:
                available, held = await bank.balance(account)
                if available < 0 or held < 0:
                    negative_seen.append(available)

    watcher = asyncio.create_task(watch_balances())
    calls = [send(*transfer) for transfer in plan for _ in range(RETRIES)]
    outcomes = await asyncio.gather(*calls)
    storm_over.set()
    await watcher

    refusals: Counter[tuple[grpc.StatusCode, str]] = Counter()
    done: dict[str, pb.Transaction] = {}
    for (_, _, amount, request_id), outcome in zip(
        [t for t in plan for _ in range(RETRIES)], outcomes, strict=True
    ):
        if isinstance(outcome, pb.Transaction):
            # Every success of one request id is the same, single transaction.
            assert done.setdefault(request_id, outcome) == outcome
            assert outcome.amount.amount_minor == -amount
        else:
            refusals[(outcome.code, outcome.info.reason)] += 1  # type: ignore[attr-defined]
    # The only refusal is the honest one: never "database is locked", never INTERNAL.
    assert set(refusals) <= {(grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_FUNDS")}
    assert refusals, "the plan must overdraw"
    assert len(done) > TRANSFERS // 4, "most plans should still go through"
    assert negative_seen == []

    # Exactly one effect per successful request id, and nothing from the refused ones.
    assert await bank.scalar(
        "SELECT count(*) FROM ledger_transactions WHERE kind = 'transfer'"
    ) == len(done)
    expected = dict(funded)
    for source, target, amount, request_id in plan:
        if request_id in done:
            expected[source.user_id] -= amount
            expected[target.user_id] += amount
    for account in accounts:
        assert await bank.balance(account) == (expected[account.user_id], 0)
    assert sum(expected.values()) == total
    await _ledger_is_balanced(bank)
