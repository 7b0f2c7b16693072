"""The signed-in user's wallet: balances, history, transfers; and admin top-ups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from superapp.wallet.v1 import wallet_service_pb2 as pb

from bff import conversions, schemas
from bff.authentication import Admin, SignedIn
from bff.dependencies import (
    WRITE_LIMITS,
    IdempotencyKey,
    PageSize,
    PageToken,
    UpstreamsDep,
    next_token,
)
from bff.openapi import errors
from bff.schemas import CurrencyCode, Uuid

__all__ = ["router"]

router = APIRouter(tags=["wallet"])


@router.get(
    "/v1/me/wallet",
    response_model=schemas.Wallet,
    responses=errors(401, 404),
    summary="My balances",
)
async def get_wallet(principal: SignedIn, upstreams: UpstreamsDep) -> schemas.Wallet:
    """Every currency balance of the signed-in user's wallet (404 `WALLET_NOT_FOUND` for
    a moment right after sign-up, while the wallet is being opened)."""
    reply = await upstreams.wallet.GetWallet(
        pb.GetWalletRequest(user_id=principal.user_id), metadata=principal.metadata
    )
    return conversions.wallet(reply.wallet)


@router.get(
    "/v1/me/wallet/transactions",
    response_model=schemas.TransactionPage,
    responses=errors(401, 404),
    summary="My transaction history",
)
async def list_transactions(
    principal: SignedIn,
    upstreams: UpstreamsDep,
    currency_code: Annotated[CurrencyCode | None, Query(description="Only this currency.")] = None,
    page_size: PageSize = 20,
    page_token: PageToken = None,
) -> schemas.TransactionPage:
    """Newest first, each from the user's side (negative amounts were paid)."""
    reply = await upstreams.wallet.ListTransactions(
        pb.ListTransactionsRequest(
            user_id=principal.user_id,
            currency_code=currency_code or "",
            page_size=page_size,
            page_token=page_token or "",
        ),
        metadata=principal.metadata,
    )
    return schemas.TransactionPage(
        transactions=[conversions.transaction(t) for t in reply.transactions],
        next_page_token=next_token(reply.next_page_token),
    )


@router.post(
    "/v1/me/wallet/transfers",
    status_code=201,
    response_model=schemas.Transaction,
    responses=errors(401, 404, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Send money to another user",
)
async def create_transfer(
    body: schemas.TransferRequest,
    key: IdempotencyKey,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.Transaction:
    """Move money from the signed-in user's wallet to another user's, same currency.
    400 `INSUFFICIENT_FUNDS`, `LIMIT_EXCEEDED` or `SELF_TRANSFER` when it cannot be done."""
    reply = await upstreams.wallet.CreateTransfer(
        pb.CreateTransferRequest(
            from_user_id=principal.user_id,
            to_user_id=body.to_user_id,
            amount=conversions.money_proto(body.amount),
            description=body.description,
            request_id=key,
        ),
        metadata=principal.metadata,
    )
    return conversions.transaction(reply.transaction)


@router.post(
    "/v1/admin/wallets/{user_id}/top-ups",
    status_code=201,
    response_model=schemas.Transaction,
    responses=errors(401, 403, 404, 413, 429),
    dependencies=WRITE_LIMITS,
    tags=["admin"],
    summary="Top up a user's wallet (admin)",
)
async def top_up(
    user_id: Annotated[Uuid, Path(description="The user whose wallet is credited.")],
    body: schemas.TopUpRequest,
    key: IdempotencyKey,
    principal: Admin,
    upstreams: UpstreamsDep,
) -> schemas.Transaction:
    """Credit a user's wallet from the platform's funding account. Admins only."""
    reply = await upstreams.wallet.CreditWallet(
        pb.CreditWalletRequest(
            user_id=user_id,
            amount=conversions.money_proto(body.amount),
            description=body.description,
            request_id=key,
        ),
        metadata=principal.metadata,
    )
    return conversions.transaction(reply.transaction)
