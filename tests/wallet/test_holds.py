"""Two-phase payments: holds reserve funds and resolve exactly once."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import wallet_service_pb2 as pb

from services.runtime.ids import new_id
from tests.services.rich_errors import rich_error
from tests.wallet.conftest import Account, Bank, eur

pytestmark = pytest.mark.slow(seconds=30)


async def _hold(bank: Bank, owner: Account, amount: int, ttl: float = 600) -> pb.Hold:
    reply = await bank.stub.CreateHold(
        pb.CreateHoldRequest(
            user_id=owner.user_id,
            amount=eur(amount),
            ttl=Duration(seconds=int(ttl), nanos=int((ttl % 1) * 1e9)),
            description="order 42",
            request_id=new_id(),
        ),
        metadata=owner.auth,
    )
    return reply.hold


async def _refused(call: object) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    error = rich_error(caught.value)
    return error.code, error.info.reason, dict(error.info.metadata)


async def test_partial_capture_pays_the_merchant_and_releases_the_rest(bank: Bank) -> None:
    buyer, merchant = await bank.user("buyer"), await bank.user("merchant")
    await bank.fund(buyer, 10_000)
    hold = await _hold(bank, buyer, 4_000)
    assert hold.status == pb.HOLD_STATUS_PENDING
    assert await bank.balance(buyer) == (6_000, 4_000)

    captured = await bank.stub.CaptureHold(
        pb.CaptureHoldRequest(
            hold_id=hold.hold_id, amount=eur(3_000), to_user_id=merchant.user_id, request_id="c1"
        ),
        metadata=buyer.auth,
    )
    assert captured.hold.status == pb.HOLD_STATUS_CAPTURED
    assert captured.hold.captured_amount == eur(3_000)
    assert captured.hold.to_user_id == merchant.user_id
    assert captured.transaction.kind == pb.TRANSACTION_KIND_HOLD_CAPTURE
    assert captured.transaction.hold_id == hold.hold_id
    assert captured.transaction.description == "order 42"
    assert captured.transaction.amount == eur(-3_000)
    assert captured.hold.capture_transaction_id == captured.transaction.transaction_id
    assert await bank.balance(buyer) == (7_000, 0)
    assert await bank.balance(merchant) == (3_000, 0)

    # Resolved once: a second resolution fails, a replay of the capture returns it again.
    again = pb.VoidHoldRequest(hold_id=hold.hold_id, request_id=new_id())
    assert await _refused(bank.stub.VoidHold(again, metadata=buyer.auth)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "HOLD_ALREADY_RESOLVED",
        {"hold_id": hold.hold_id, "status": "HOLD_STATUS_CAPTURED"},
    )
    replay = await bank.stub.CaptureHold(
        pb.CaptureHoldRequest(
            hold_id=hold.hold_id, amount=eur(3_000), to_user_id=merchant.user_id, request_id="c1"
        ),
        metadata=buyer.auth,
    )
    assert replay == captured
    assert await bank.balance(merchant) == (3_000, 0)


async def test_capture_checks_amount_currency_and_destination(bank: Bank) -> None:
    buyer, merchant = await bank.user("buyer"), await bank.user("merchant")
    await bank.fund(buyer, 1_000)
    hold = await _hold(bank, buyer, 500)

    def capture(amount: Money | None, to: str) -> object:
        request = pb.CaptureHoldRequest(hold_id=hold.hold_id, to_user_id=to, request_id=new_id())
        if amount is not None:
            request.amount.CopyFrom(amount)
        return bank.stub.CaptureHold(request, metadata=buyer.auth)

    assert (await _refused(capture(eur(501), merchant.user_id)))[1:] == (
        "CAPTURE_EXCEEDS_HOLD",
        {"held_minor": "500"},
    )
    usd = Money(currency_code="USD", amount_minor=10)
    assert (await _refused(capture(usd, merchant.user_id)))[1:] == (
        "CURRENCY_MISMATCH",
        {"currency_code": "EUR"},
    )
    assert (await _refused(capture(None, buyer.user_id)))[:2] == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "SELF_TRANSFER",
    )
    assert (await _refused(capture(None, new_id())))[1] == "WALLET_NOT_FOUND"
    # Every refusal left the hold pending and the money where it was.
    assert await bank.balance(buyer) == (500, 500)
    full = await capture(None, merchant.user_id)
    assert full.hold.captured_amount == eur(500)  # type: ignore[attr-defined]


async def test_void_releases_everything(bank: Bank) -> None:
    buyer = await bank.user("buyer")
    await bank.fund(buyer, 1_000)
    hold = await _hold(bank, buyer, 800)
    voided = await bank.stub.VoidHold(
        pb.VoidHoldRequest(hold_id=hold.hold_id, request_id=new_id()), metadata=buyer.auth
    )
    assert voided.hold.status == pb.HOLD_STATUS_VOIDED
    assert voided.hold.HasField("resolve_time")
    assert not voided.hold.HasField("captured_amount")
    assert await bank.balance(buyer) == (1_000, 0)
    assert await bank.scalar("SELECT count(*) FROM ledger_transactions WHERE kind <> 'credit'") == 0


async def test_a_hold_cannot_reserve_more_than_is_available(bank: Bank) -> None:
    buyer = await bank.user("buyer")
    await bank.fund(buyer, 1_000)
    await _hold(bank, buyer, 700)
    refused = await _refused(_hold(bank, buyer, 301))
    assert refused == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_FUNDS",
        {"currency_code": "EUR", "available_minor": "300"},
    )


async def test_concurrent_capture_and_void_have_exactly_one_winner(bank: Bank) -> None:
    buyer, merchant = await bank.user("buyer"), await bank.user("merchant")
    await bank.fund(buyer, 100_000)
    for _ in range(10):
        hold = await _hold(bank, buyer, 1_000)
        capture = bank.stub.CaptureHold(
            pb.CaptureHoldRequest(
                hold_id=hold.hold_id, to_user_id=merchant.user_id, request_id=new_id()
            ),
            metadata=buyer.auth,
        )
        void = bank.stub.VoidHold(
            pb.VoidHoldRequest(hold_id=hold.hold_id, request_id=new_id()), metadata=buyer.auth
        )
        outcomes = await asyncio.gather(capture, void, return_exceptions=True)
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        losers = [rich_error(o) for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert len(winners) == 1
        assert [loser.info.reason for loser in losers] == ["HOLD_ALREADY_RESOLVED"]
    captured = await bank.balance(merchant)
    # Whatever won each race, no money is held any more and none was made or lost.
    assert (await bank.balance(buyer))[1] == 0
    assert sum(await bank.balance(buyer)) + captured[0] == 100_000


async def test_an_expired_hold_releases_itself(bank: Bank) -> None:
    buyer, merchant = await bank.user("buyer"), await bank.user("merchant")
    await bank.fund(buyer, 1_000)
    hold = await _hold(bank, buyer, 600, ttl=0.5)
    await asyncio.sleep(0.6)
    # At once, before or after the sweep: the hold reads expired, its funds are free.
    got = (
        await bank.stub.GetHold(pb.GetHoldRequest(hold_id=hold.hold_id), metadata=buyer.auth)
    ).hold
    assert got.status == pb.HOLD_STATUS_EXPIRED
    assert got.resolve_time == hold.expire_time
    assert await bank.balance(buyer) == (1_000, 0)
    capture = pb.CaptureHoldRequest(
        hold_id=hold.hold_id, to_user_id=merchant.user_id, request_id=new_id()
    )
    code, reason, metadata = await _refused(bank.stub.CaptureHold(capture, metadata=buyer.auth))
    assert (code, reason, metadata["hold_id"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "HOLD_EXPIRED",
        hold.hold_id,
    )
    # The funds are usable before the sweep has run, and the sweep then records it.
    await bank.transfer(buyer, merchant, 1_000)
    for _ in range(100):
        if (
            await bank.scalar(
                "SELECT status FROM holds WHERE hold_id = :hold_id", hold_id=hold.hold_id
            )
            == "expired"
        ):
            break
        await asyncio.sleep(0.05)
    assert (
        await bank.scalar(
            "SELECT count(*) FROM outbox_events WHERE aggregate_id = :hold_id"
            " AND event_type = 'superapp.wallet.v1.HoldVoided'",
            hold_id=hold.hold_id,
        )
        == 1
    )
    assert await bank.balance(buyer) == (0, 0)
    assert await bank.balance(merchant) == (1_000, 0)


async def test_hold_ttl_is_bounded(bank: Bank) -> None:
    buyer = await bank.user("buyer")
    for seconds in (0, -5, 7 * 24 * 3600 + 1):
        request = pb.CreateHoldRequest(
            user_id=buyer.user_id,
            amount=eur(1),
            ttl=Duration(seconds=seconds),
            request_id=new_id(),
        )
        code, reason, _ = await _refused(bank.stub.CreateHold(request, metadata=buyer.auth))
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
@pytest.mark.timeout(180)
async def test_replicas_sweeping_side_by_side_release_each_expired_hold_once(
    bank: Bank, caplog: pytest.LogCaptureFixture
) -> None:
    """Two wallet replicas sweep the same holds table; each expired hold is released and
    announced exactly once, and neither sweep fails on the other's holds (without
    claiming, both took the same holds and one's whole batch failed and rolled back)."""
    from services.wallet.server import create_server

    second = await create_server(bank.settings, bank.tracer_provider)
    try:
        buyer = await bank.user("buyer")
        await bank.fund(buyer, 100_000)
        holds = [await _hold(bank, buyer, 100) for _ in range(300)]
        assert await bank.balance(buyer) == (70_000, 30_000)
        # All due at once, for both replicas' sweeps (every 0.1 s) to find together.
        await bank.rewrite("UPDATE holds SET expire_time = create_time")
        for _ in range(300):
            expired = await bank.scalar("SELECT count(*) FROM holds WHERE status = 'expired'")
            if expired == len(holds):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a second release, if any, would land by now
        assert expired == len(holds)
        assert await bank.scalar(
            "SELECT count(*) FROM outbox_events WHERE event_type = 'superapp.wallet.v1.HoldVoided'"
        ) == len(holds)
        assert await bank.balance(buyer) == (100_000, 0)
        failed = [r.getMessage() for r in caplog.records if "hold-expiry failed" in r.getMessage()]
        assert failed == []
    finally:
        await second.stop(0)
