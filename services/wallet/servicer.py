"""WalletService over gRPC: authorises, and translates proto ⇄ ledger (the contract's
rules have checked each request before a handler runs).

Every mutation becomes one idempotent command for the ledger's batch writer: the
`request_id` replay check, the business rules, the ledger writes, the outbox event and
the stored response all commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from sqlalchemy.engine import Connection
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import wallet_service_pb2 as pb
from superapp.wallet.v1 import wallet_service_pb2_grpc

from services.auth.caller import require_caller
from services.database.after_commit import AfterCommit, restarting
from services.database.batch_writer import BatchWriter
from services.database.idempotency import IdempotentWrites
from services.runtime.errors import FieldViolation, InvalidArgument, ServiceError
from services.runtime.page_tokens import PageTokens
from services.runtime.proto_time import to_timedelta, to_timestamp
from services.runtime.validation import page_size
from services.wallet.balances import Balances, WalletView
from services.wallet.history import History
from services.wallet.holds import HoldRecord, Holds, HoldStatus
from services.wallet.ledger import (
    LedgerTransaction,
    SystemAccount,
    TransactionKind,
    account_lock,
    counterparty,
    is_system,
    net_for,
)
from services.wallet.money_metrics import MoneyMetrics
from services.wallet.transfers import Transfers

__all__ = ["WalletServicer"]

Context = grpc.aio.ServicerContext[Any, Any]
R = TypeVar("R", bound=Message)

DEFAULT_HOLD_TTL = timedelta(minutes=15)

_SYSTEM_ACCOUNTS = {
    SystemAccount.FUNDING: pb.SYSTEM_ACCOUNT_FUNDING,
    SystemAccount.SETTLEMENT: pb.SYSTEM_ACCOUNT_SETTLEMENT,
    SystemAccount.MERCHANT_PAYOUTS: pb.SYSTEM_ACCOUNT_MERCHANT_PAYOUTS,
}
_KINDS = {
    TransactionKind.CREDIT: pb.TRANSACTION_KIND_CREDIT,
    TransactionKind.TRANSFER: pb.TRANSACTION_KIND_TRANSFER,
    TransactionKind.HOLD_CAPTURE: pb.TRANSACTION_KIND_HOLD_CAPTURE,
}
_HOLD_STATUSES = {
    HoldStatus.PENDING: pb.HOLD_STATUS_PENDING,
    HoldStatus.CAPTURED: pb.HOLD_STATUS_CAPTURED,
    HoldStatus.VOIDED: pb.HOLD_STATUS_VOIDED,
    HoldStatus.EXPIRED: pb.HOLD_STATUS_EXPIRED,
}


def _posting(owner: str, amount: Money) -> pb.Posting:
    if is_system(owner):
        return pb.Posting(system_account=_SYSTEM_ACCOUNTS[SystemAccount(owner)], amount=amount)
    return pb.Posting(user_id=owner, amount=amount)


def _transaction(transaction: LedgerTransaction, viewer: str) -> pb.Transaction:
    currency = transaction.currency_code
    message = pb.Transaction(
        transaction_id=transaction.transaction_id,
        kind=_KINDS[transaction.kind],
        postings=[
            _posting(p.owner, Money(currency_code=currency, amount_minor=p.amount_minor))
            for p in transaction.postings
        ],
        description=transaction.description,
        create_time=to_timestamp(transaction.create_time),
        request_id=transaction.request_id,
        hold_id=transaction.hold_id or "",
        viewer_user_id=viewer,
        amount=Money(currency_code=currency, amount_minor=net_for(transaction.postings, viewer)),
    )
    other = counterparty(transaction.postings, viewer)
    if other is not None and is_system(other):
        message.counterparty_system_account = _SYSTEM_ACCOUNTS[SystemAccount(other)]
    elif other is not None:
        message.counterparty_user_id = other
    return message


def _hold(hold: HoldRecord) -> pb.Hold:
    message = pb.Hold(
        hold_id=hold.hold_id,
        user_id=hold.user_id,
        amount=Money(currency_code=hold.currency_code, amount_minor=hold.amount_minor),
        status=_HOLD_STATUSES[hold.status],
        expire_time=to_timestamp(hold.expire_time),
        create_time=to_timestamp(hold.create_time),
        description=hold.description,
        to_user_id=hold.to_user_id or "",
        capture_transaction_id=hold.capture_transaction_id or "",
    )
    if hold.resolve_time is not None:
        message.resolve_time.CopyFrom(to_timestamp(hold.resolve_time))
    if hold.captured_minor is not None:
        message.captured_amount.CopyFrom(
            Money(currency_code=hold.currency_code, amount_minor=hold.captured_minor)
        )
    return message


def _wallet(view: WalletView) -> pb.Wallet:
    return pb.Wallet(
        user_id=view.user_id,
        balances=[
            pb.Balance(
                currency_code=b.currency_code,
                available_minor=b.available_minor,
                held_minor=b.held_minor,
            )
            for b in view.balances
        ],
        create_time=to_timestamp(view.create_time),
    )


def _hold_ttl(request: pb.CreateHoldRequest) -> timedelta:
    """The requested ttl (the contract bounds it: positive, at most 7 days) or the default."""
    return to_timedelta(request.ttl) if request.HasField("ttl") else DEFAULT_HOLD_TTL


def _not_self(from_field: str, to_field: str) -> InvalidArgument:
    return InvalidArgument(
        [FieldViolation(to_field, f"must differ from {from_field}", "SELF_TRANSFER")],
        reason="SELF_TRANSFER",
    )


class WalletServicer(wallet_service_pb2_grpc.WalletServiceServicer):
    """The wallet gRPC service."""

    def __init__(
        self,
        *,
        writer: BatchWriter,
        writes: IdempotentWrites,
        transfers: Transfers,
        holds: Holds,
        balances: Balances,
        history: History,
        page_tokens: PageTokens,
        metrics: MoneyMetrics,
    ) -> None:
        self._writer = writer
        self._writes = writes
        self._transfers = transfers
        self._holds = holds
        self._balances = balances
        self._history = history
        self._page_tokens = page_tokens
        self._metrics = metrics

    async def _idempotent(
        self,
        method: str,
        request: Any,
        response_type: type[R],
        mutate: Callable[[Connection, AfterCommit], R],
        *,
        accounts: Sequence[tuple[str, str]] = (),
    ) -> R:
        """`mutate` as one idempotent command of the batch writer; what it counts in
        its `AfterCommit` counts once its batch committed (a replay runs no `mutate`
        and counts nothing). `accounts`: the (owner, currency) accounts it changes, as
        far as the request says, locked before its batch runs."""
        counts = AfterCommit()
        command = self._writes.command(
            scope=require_caller().user_id,
            request_id=request.request_id,
            method=method,
            request=request,
            response_type=response_type,
            mutate=lambda connection: mutate(connection, counts),
        )
        try:
            return await self._writer.submit(
                restarting(counts, command),
                after_commit=counts.run,
                locks=[account_lock(owner, currency) for owner, currency in accounts],
            )
        except ServiceError as error:
            self._metrics.refused(error.reason)
            raise

    async def GetWallet(
        self, request: pb.GetWalletRequest, context: Context
    ) -> pb.GetWalletResponse:
        # Checked before the look-up, so a stranger learns nothing about existence.
        require_caller().check_may_act_for(request.user_id)
        return pb.GetWalletResponse(wallet=_wallet(await self._balances.wallet(request.user_id)))

    async def CreditWallet(
        self, request: pb.CreditWalletRequest, context: Context
    ) -> pb.CreditWalletResponse:
        def credit(connection: Connection, counts: AfterCommit) -> pb.CreditWalletResponse:
            top_up = self._transfers.credit(
                connection,
                user_id=request.user_id,
                currency_code=request.amount.currency_code,
                amount_minor=request.amount.amount_minor,
                description=request.description,
                request_id=request.request_id,
            )
            self._metrics.moved(counts, top_up.transaction, first=top_up.first)
            return pb.CreditWalletResponse(
                transaction=_transaction(top_up.transaction, request.user_id)
            )

        return await self._idempotent(
            "CreditWallet",
            request,
            pb.CreditWalletResponse,
            credit,
            accounts=[
                (request.user_id, request.amount.currency_code),
                (SystemAccount.FUNDING, request.amount.currency_code),
            ],
        )

    async def CreateTransfer(
        self, request: pb.CreateTransferRequest, context: Context
    ) -> pb.CreateTransferResponse:
        if request.to_user_id == request.from_user_id:
            raise _not_self("from_user_id", "to_user_id")
        require_caller().check_may_act_for(request.from_user_id)

        def transfer(connection: Connection, counts: AfterCommit) -> pb.CreateTransferResponse:
            transaction = self._transfers.transfer(
                connection,
                from_user_id=request.from_user_id,
                to_user_id=request.to_user_id,
                currency_code=request.amount.currency_code,
                amount_minor=request.amount.amount_minor,
                description=request.description,
                request_id=request.request_id,
            )
            self._metrics.moved(counts, transaction, first=False)
            return pb.CreateTransferResponse(
                transaction=_transaction(transaction, request.from_user_id)
            )

        return await self._idempotent(
            "CreateTransfer",
            request,
            pb.CreateTransferResponse,
            transfer,
            accounts=[
                (request.from_user_id, request.amount.currency_code),
                (request.to_user_id, request.amount.currency_code),
            ],
        )

    async def CreateHold(
        self, request: pb.CreateHoldRequest, context: Context
    ) -> pb.CreateHoldResponse:
        ttl = _hold_ttl(request)
        require_caller().check_may_act_for(request.user_id, system=True)

        def create(connection: Connection, _counts: AfterCommit) -> pb.CreateHoldResponse:
            hold = self._holds.create(
                connection,
                user_id=request.user_id,
                currency_code=request.amount.currency_code,
                amount_minor=request.amount.amount_minor,
                ttl=ttl,
                description=request.description,
            )
            return pb.CreateHoldResponse(hold=_hold(hold))

        return await self._idempotent(
            "CreateHold",
            request,
            pb.CreateHoldResponse,
            create,
            accounts=[(request.user_id, request.amount.currency_code)],
        )

    async def GetHold(self, request: pb.GetHoldRequest, context: Context) -> pb.GetHoldResponse:
        hold = await self._holds.get(require_caller(), request.hold_id)
        return pb.GetHoldResponse(hold=_hold(hold))

    async def CaptureHold(
        self, request: pb.CaptureHoldRequest, context: Context
    ) -> pb.CaptureHoldResponse:
        caller = require_caller()
        amount = None
        if request.HasField("amount"):
            amount = (request.amount.currency_code, request.amount.amount_minor)

        def capture(connection: Connection, counts: AfterCommit) -> pb.CaptureHoldResponse:
            hold, transaction = self._holds.capture(
                connection,
                caller=caller,
                hold_id=request.hold_id,
                to_user_id=request.to_user_id,
                amount=amount,
                request_id=request.request_id,
            )
            self._metrics.moved(counts, transaction, first=False)
            return pb.CaptureHoldResponse(
                hold=_hold(hold), transaction=_transaction(transaction, hold.user_id)
            )

        return await self._idempotent("CaptureHold", request, pb.CaptureHoldResponse, capture)

    async def VoidHold(self, request: pb.VoidHoldRequest, context: Context) -> pb.VoidHoldResponse:
        caller = require_caller()

        def void(connection: Connection, _counts: AfterCommit) -> pb.VoidHoldResponse:
            return pb.VoidHoldResponse(
                hold=_hold(self._holds.void(connection, caller=caller, hold_id=request.hold_id))
            )

        return await self._idempotent("VoidHold", request, pb.VoidHoldResponse, void)

    async def ListTransactions(
        self, request: pb.ListTransactionsRequest, context: Context
    ) -> pb.ListTransactionsResponse:
        size = page_size(request.page_size)
        require_caller().check_may_act_for(request.user_id)
        # The history is the user's whoever reads it (they or an admin).
        scope = ["ListTransactions", request.user_id, request.currency_code]
        after = self._page_tokens.decode(request.page_token, scope, (int,))
        page = await self._history.page(
            request.user_id,
            currency_code=request.currency_code,
            size=size,
            before=int(after[0]) if after else None,
        )
        next_token = ""
        if page.next_before is not None:
            next_token = self._page_tokens.encode([page.next_before], scope)
        return pb.ListTransactionsResponse(
            transactions=[_transaction(t, request.user_id) for t in page.transactions],
            next_page_token=next_token,
        )
