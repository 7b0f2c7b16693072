"""The orders service's own credentials: identity's client-credentials token (role
system), what it may do for a user, and what a user's token still may not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import httpx
import jwt
import pytest
from google.protobuf.duration_pb2 import Duration
from superapp.catalogue.v1 import catalogue_service_pb2 as catalogue_pb
from superapp.catalogue.v1 import catalogue_service_pb2_grpc
from superapp.identity.v1 import identity_service_pb2 as identity_pb
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import wallet_service_pb2 as wallet_pb
from superapp.wallet.v1 import wallet_service_pb2_grpc

from services.auth.service_token import ServiceToken
from services.identity.service_clients import service_subject
from services.runtime.ids import new_id
from tests.bff.conftest import ORDERS_SECRET, Platform, available, sign_up, wallet_of
from tests.orders.conftest import metadata_of, open_shop, orders_platform
from tests.services.rich_errors import rich_error


@pytest.fixture(scope="module", params=["sqlite"])
async def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    """The platform once: no order is stored here, so one backend is enough."""
    async with orders_platform(request, tmp_path_factory) as it:
        yield it


class _Clock:
    def __init__(self) -> None:
        self.time = datetime.now(UTC)

    def now(self) -> datetime:
        return self.time


@pytest.mark.parametrize(
    ("client_id", "secret"), [("orders", "wrong-secret-0123456789"), ("nobody", ORDERS_SECRET)]
)
async def test_a_wrong_secret_or_unknown_client_is_invalid_client(
    platform: Platform, client_id: str, secret: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await platform.identity.stub.IssueServiceToken(
            identity_pb.IssueServiceTokenRequest(client_id=client_id, client_secret=secret)
        )
    error = rich_error(refused.value)
    assert error.code == grpc.StatusCode.UNAUTHENTICATED
    assert (error.info.reason, error.info.domain) == ("INVALID_CLIENT", "identity.superapp")
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await platform.identity.stub.IssueServiceToken(identity_pb.IssueServiceTokenRequest())
    assert rich_error(empty.value).violations == {
        "client_id": "REQUIRED",
        "client_secret": "REQUIRED",
    }


async def test_the_service_token_is_system_with_a_stable_subject_and_is_renewed(
    platform: Platform,
) -> None:
    clock = _Clock()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{platform.identity.service.port}")
    try:
        token = ServiceToken(channel, "orders", ORDERS_SECRET, clock)
        first = await token.metadata()
        assert await token.metadata() == first  # cached
        clock.time += timedelta(minutes=11)  # two thirds of the 15-minute lifetime
        renewed = await token.metadata()
    finally:
        await channel.close()

    assert renewed != first
    for metadata in (first, renewed):
        claims = _claims(metadata)
        assert claims["roles"] == ["system"]
        assert claims["sub"] == service_subject("orders")


def _claims(metadata: tuple[tuple[str, str], ...]) -> dict[str, object]:
    [(name, value)] = metadata
    assert name == "authorization"
    claims: dict[str, object] = jwt.decode(
        value.removeprefix("Bearer "), options={"verify_signature": False}
    )
    return claims


async def test_a_system_token_holds_captures_and_reserves_for_a_user_and_a_user_cannot(
    platform: Platform, client: httpx.AsyncClient, channel_factory: list[grpc.aio.Channel]
) -> None:
    channels = channel_factory
    async with open_shop(platform, client) as shop:
        issued = await platform.identity.stub.IssueServiceToken(
            identity_pb.IssueServiceTokenRequest(client_id="orders", client_secret=ORDERS_SECRET)
        )
        system = (("authorization", f"Bearer {issued.access_token}"),)
        wallet_channel = grpc.aio.insecure_channel(platform.wallet.address)
        catalogue_channel = grpc.aio.insecure_channel(platform.catalogue.address)
        channels.extend([wallet_channel, catalogue_channel])
        wallet = wallet_service_pb2_grpc.WalletServiceStub(wallet_channel)
        catalogue = catalogue_service_pb2_grpc.CatalogueServiceStub(catalogue_channel)
        ttl = Duration(seconds=60)

        held = await wallet.CreateHold(
            wallet_pb.CreateHoldRequest(
                user_id=shop.buyer.user_id,
                amount=Money(currency_code="EUR", amount_minor=250),
                ttl=ttl,
                request_id=new_id(),
            ),
            metadata=system,
        )
        captured = await wallet.CaptureHold(
            wallet_pb.CaptureHoldRequest(
                hold_id=held.hold.hold_id, to_user_id=shop.merchant.user_id, request_id=new_id()
            ),
            metadata=system,
        )
        reserved = await catalogue.ReserveStock(
            catalogue_pb.ReserveStockRequest(
                product_id=shop.product["product_id"],
                quantity=1,
                user_id=shop.buyer.user_id,
                request_id=new_id(),
            ),
            metadata=system,
        )

        assert captured.hold.status == wallet_pb.HOLD_STATUS_CAPTURED
        assert available(await wallet_of(client, shop.buyer)) == (750, 0)
        assert available(await wallet_of(client, shop.merchant)) == (250, 0)
        assert reserved.reservation.user_id == shop.buyer.user_id

        other = await sign_up(client, "other")
        as_other = metadata_of(other)
        with pytest.raises(grpc.aio.AioRpcError) as hold_denied:
            await wallet.CreateHold(
                wallet_pb.CreateHoldRequest(
                    user_id=shop.buyer.user_id,
                    amount=Money(currency_code="EUR", amount_minor=1),
                    request_id=new_id(),
                ),
                metadata=as_other,
            )
        assert hold_denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as reserve_denied:
            await catalogue.ReserveStock(
                catalogue_pb.ReserveStockRequest(
                    product_id=shop.product["product_id"],
                    quantity=1,
                    user_id=shop.buyer.user_id,
                    request_id=new_id(),
                ),
                metadata=as_other,
            )
        assert reserve_denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as restock_denied:
            await catalogue.AdjustStock(
                catalogue_pb.AdjustStockRequest(
                    product_id=shop.product["product_id"],
                    delta=1,
                    reason="not mine",
                    request_id=new_id(),
                ),
                metadata=as_other,
            )
        assert restock_denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        restocked = await catalogue.AdjustStock(
            catalogue_pb.AdjustStockRequest(
                product_id=shop.product["product_id"],
                delta=1,
                reason="returned by a reversed order",
                request_id=new_id(),
            ),
            metadata=system,
        )
        assert restocked.stock.stocked_quantity == 5
