"""Wallet and catalogue verify identity's tokens with keys fetched from identity over gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from superapp.catalogue.v1 import catalogue_service_pb2 as catalogue_pb
from superapp.catalogue.v1 import catalogue_service_pb2_grpc
from superapp.wallet.v1 import wallet_service_pb2 as wallet_pb
from superapp.wallet.v1 import wallet_service_pb2_grpc

from scripts.nats_process import NatsProcess
from services.catalogue.config import CatalogueSettings
from services.catalogue.server import create_server as create_catalogue
from services.runtime.ids import new_id
from services.wallet.config import WalletSettings
from services.wallet.server import create_server as create_wallet
from tests.identity.conftest import Identity, running_identity
from tests.services.rich_errors import rich_error

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def identity(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, own_nats: NatsProcess
) -> AsyncIterator[Identity]:
    """Identity on a NATS server of this test's own, shared with the wallet below: its
    `UserRegistered` events open the wallet (see `own_nats`)."""
    async with running_identity(database_url, tmp_path, tracer_provider, own_nats.url) as it:
        yield it


@pytest.fixture
async def peers(
    identity: Identity, tmp_path: Path, tracer_provider: TracerProvider, own_nats: NatsProcess
) -> AsyncIterator[tuple[grpc.aio.Channel, grpc.aio.Channel]]:
    """Wallet and catalogue pointed at the running identity; channels to both."""
    common = {
        "port": 0,
        "relay": "task",
        "nats_url": own_nats.url,
        "identity_addr": f"127.0.0.1:{identity.service.port}",
    }
    wallet = await create_wallet(WalletSettings(data_dir=tmp_path / "w", **common), tracer_provider)
    catalogue = await create_catalogue(
        CatalogueSettings(data_dir=tmp_path / "c", **common), tracer_provider
    )
    channels = (
        grpc.aio.insecure_channel(f"127.0.0.1:{wallet.port}"),
        grpc.aio.insecure_channel(f"127.0.0.1:{catalogue.port}"),
    )
    try:
        yield channels
    finally:
        for channel in channels:
            await channel.close()
        await wallet.stop(0)
        await catalogue.stop(0)


async def _code(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    error = rich_error(caught.value)
    return error.code, error.info.reason


async def test_tokens_from_identity_open_wallet_and_catalogue(
    identity: Identity, peers: tuple[grpc.aio.Channel, grpc.aio.Channel]
) -> None:
    wallet = wallet_service_pb2_grpc.WalletServiceStub(peers[0])
    catalogue = catalogue_service_pb2_grpc.CatalogueServiceStub(peers[1])
    user, as_user = await identity.signed_up("peer@example.com")
    get_wallet = wallet_pb.GetWalletRequest(user_id=user.user_id)
    forged = (("authorization", "Bearer " + as_user[0][1].split()[1][:-4] + "AAAA"),)

    # No token, a forged token: refused before any handler runs.
    assert await _code(wallet.GetWallet(get_wallet)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
    )
    assert (await _code(wallet.GetWallet(get_wallet, metadata=forged)))[0] == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    # identity's token opens the user's own wallet (once the sign-up event has opened it).
    for _ in range(500):
        try:
            opened = await wallet.GetWallet(get_wallet, metadata=as_user)
        except grpc.aio.AioRpcError as error:
            reason = rich_error(error).info.reason
            if reason != "WALLET_NOT_FOUND":
                pytest.fail(f"GetWallet failed with {reason}")
            await asyncio.sleep(0.02)
        else:
            assert opened.wallet.user_id == user.user_id
            break
    else:
        pytest.fail("the wallet never opened")
    # Role checks: a plain user may not top up, nor create products.
    credit = wallet_pb.CreditWalletRequest(user_id=user.user_id, request_id=new_id())
    assert await _code(wallet.CreditWallet(credit, metadata=as_user)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    )
    create = catalogue_pb.CreateProductRequest(request_id=new_id())
    assert (await _code(catalogue.CreateProduct(create, metadata=as_user)))[0] == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    # Public reads work without a token, but a bad token sent to them is refused.
    assert (await catalogue.ListCategories(catalogue_pb.ListCategoriesRequest())).categories == []
    assert (
        await _code(catalogue.ListCategories(catalogue_pb.ListCategoriesRequest(), metadata=forged))
    )[0] == grpc.StatusCode.UNAUTHENTICATED
