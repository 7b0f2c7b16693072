"""request_id replays, and who may see or move whose money."""

from __future__ import annotations

import grpc
import pytest
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import wallet_service_pb2 as pb

from services.runtime.ids import new_id
from tests.services.rich_errors import rich_error
from tests.wallet.conftest import Bank, eur


async def _refused(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    error = rich_error(caught.value)
    return error.code, error.info.reason


async def test_a_replay_returns_the_first_response_even_after_a_restart(bank: Bank) -> None:
    ann, bob = await bank.user("ann"), await bank.user("bob")
    await bank.fund(ann, 1_000)
    request = pb.CreateTransferRequest(
        from_user_id=ann.user_id, to_user_id=bob.user_id, amount=eur(600), request_id="pay-1"
    )
    first = await bank.stub.CreateTransfer(request, metadata=ann.auth)
    await bank.restart()
    # The balance no longer covers it, but a replay is recognised before any check.
    again = await bank.stub.CreateTransfer(request, metadata=ann.auth)
    assert again == first
    assert await bank.balance(ann) == (400, 0)
    assert await bank.balance(bob) == (600, 0)
    assert (
        await bank.scalar(
            "SELECT count(*) FROM outbox_events WHERE event_type ="
            " 'superapp.wallet.v1.FundsTransferred'"
        )
        == 1
    )


async def test_a_request_id_is_bound_to_its_parameters_and_rpc(bank: Bank) -> None:
    ann, bob = await bank.user("ann"), await bank.user("bob")
    await bank.fund(ann, 1_000)
    transfer = pb.CreateTransferRequest(
        from_user_id=ann.user_id, to_user_id=bob.user_id, amount=eur(100), request_id="k"
    )
    await bank.stub.CreateTransfer(transfer, metadata=ann.auth)
    transfer.amount.amount_minor = 101
    assert await _refused(bank.stub.CreateTransfer(transfer, metadata=ann.auth)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "IDEMPOTENCY_KEY_REUSED",
    )
    hold = pb.CreateHoldRequest(user_id=ann.user_id, amount=eur(100), request_id="k")
    assert (await _refused(bank.stub.CreateHold(hold, metadata=ann.auth)))[1] == (
        "IDEMPOTENCY_KEY_REUSED"
    )
    # Keys are per caller: Bob may use "k" for his own transfer.
    back = pb.CreateTransferRequest(
        from_user_id=bob.user_id, to_user_id=ann.user_id, amount=eur(50), request_id="k"
    )
    await bank.stub.CreateTransfer(back, metadata=bob.auth)
    assert await bank.balance(ann) == (950, 0)


async def test_a_failed_call_leaves_its_request_id_free(bank: Bank) -> None:
    ann, bob = await bank.user("ann"), await bank.user("bob")
    request = pb.CreateTransferRequest(
        from_user_id=ann.user_id, to_user_id=bob.user_id, amount=eur(100), request_id="later"
    )
    assert (await _refused(bank.stub.CreateTransfer(request, metadata=ann.auth)))[1] == (
        "INSUFFICIENT_FUNDS"
    )
    await bank.fund(ann, 100)
    await bank.stub.CreateTransfer(request, metadata=ann.auth)
    assert await bank.balance(bob) == (100, 0)


async def test_nobody_reads_or_moves_another_users_money(bank: Bank) -> None:
    ann, mallory = await bank.user("ann"), await bank.user("mallory")
    await bank.fund(ann, 1_000)
    hold = (
        await bank.stub.CreateHold(
            pb.CreateHoldRequest(user_id=ann.user_id, amount=eur(100), request_id=new_id()),
            metadata=ann.auth,
        )
    ).hold
    as_mallory = mallory.auth
    denied = (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")
    calls = [
        bank.stub.GetWallet(pb.GetWalletRequest(user_id=ann.user_id), metadata=as_mallory),
        bank.stub.ListTransactions(
            pb.ListTransactionsRequest(user_id=ann.user_id), metadata=as_mallory
        ),
        bank.stub.CreateTransfer(
            pb.CreateTransferRequest(
                from_user_id=ann.user_id,
                to_user_id=mallory.user_id,
                amount=eur(1),
                request_id=new_id(),
            ),
            metadata=as_mallory,
        ),
        bank.stub.CreateHold(
            pb.CreateHoldRequest(user_id=ann.user_id, amount=eur(1), request_id=new_id()),
            metadata=as_mallory,
        ),
        bank.stub.GetHold(pb.GetHoldRequest(hold_id=hold.hold_id), metadata=as_mallory),
        bank.stub.CaptureHold(
            pb.CaptureHoldRequest(
                hold_id=hold.hold_id, to_user_id=mallory.user_id, request_id=new_id()
            ),
            metadata=as_mallory,
        ),
        bank.stub.VoidHold(
            pb.VoidHoldRequest(hold_id=hold.hold_id, request_id=new_id()), metadata=as_mallory
        ),
        bank.stub.CreditWallet(
            pb.CreditWalletRequest(user_id=mallory.user_id, amount=eur(1), request_id=new_id()),
            metadata=as_mallory,
        ),
    ]
    for call in calls:
        assert await _refused(call) == denied
    assert await bank.balance(ann) == (900, 100)
    assert await bank.balance(mallory) == (0, 0)
    # The admin may read any wallet.
    assert (await bank.wallet_of(type(ann)(ann.user_id, bank.admin.auth))).user_id == ann.user_id


async def test_malformed_requests_name_every_bad_field(bank: Bank) -> None:
    ann = await bank.user("ann")
    request = pb.CreateTransferRequest(
        from_user_id=ann.user_id,
        to_user_id="not-a-uuid",
        amount=Money(currency_code="EUR", amount_minor=0),
        description="x" * 201,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bank.stub.CreateTransfer(request, metadata=ann.auth)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(error.violations) == {
        "to_user_id",
        "amount.amount_minor",
        "description",
        "request_id",
    }
    bad_currency = pb.CreditWalletRequest(
        user_id=ann.user_id, amount=Money(currency_code="EUX", amount_minor=1), request_id="r"
    )
    assert await _refused(bank.stub.CreditWallet(bad_currency, metadata=bank.admin.auth)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_CURRENCY",
    )
    to_self = pb.CreateTransferRequest(
        from_user_id=ann.user_id, to_user_id=ann.user_id, amount=eur(1), request_id="r"
    )
    assert await _refused(bank.stub.CreateTransfer(to_self, metadata=ann.auth)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "SELF_TRANSFER",
    )
    stranger = pb.CreditWalletRequest(user_id=new_id(), amount=eur(1), request_id="r")
    assert await _refused(bank.stub.CreditWallet(stranger, metadata=bank.admin.auth)) == (
        grpc.StatusCode.NOT_FOUND,
        "WALLET_NOT_FOUND",
    )


async def test_transfers_above_the_limit_are_refused(bank: Bank) -> None:
    ann, bob = await bank.user("ann"), await bank.user("bob")
    limit = bank.settings.transfer_limit("EUR")
    await bank.fund(ann, limit + 1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bank.stub.CreateTransfer(
            pb.CreateTransferRequest(
                from_user_id=ann.user_id,
                to_user_id=bob.user_id,
                amount=eur(limit + 1),
                request_id=new_id(),
            ),
            metadata=ann.auth,
        )
    error = rich_error(caught.value)
    assert (error.code, error.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "LIMIT_EXCEEDED",
    )
    assert dict(error.info.metadata) == {"currency_code": "EUR", "limit_minor": str(limit)}
