"""The home screen in one call: profile, balances and featured products, side by side.

The three upstream calls run concurrently, each with its own short deadline; a part
whose upstream fails or is too slow comes back as null and is listed in `unavailable`
with its problem, and the rest is returned anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from fastapi import APIRouter
from superapp.catalogue.v1 import catalogue_service_pb2 as catalogue_pb
from superapp.identity.v1 import identity_service_pb2 as identity_pb
from superapp.wallet.v1 import wallet_service_pb2 as wallet_pb

from bff import conversions, schemas
from bff.authentication import SignedIn
from bff.dependencies import SettingsDep, UpstreamsDep
from bff.openapi import errors
from bff.problems import problem_from_rpc_error

__all__ = ["router"]

router = APIRouter(tags=["home"])

FEATURED_COUNT = 10
_T = TypeVar("_T")


async def _part(fetch: Callable[[], Awaitable[_T]]) -> _T | schemas.ProblemSummary:
    try:
        return await fetch()
    except grpc.aio.AioRpcError as error:
        problem, _ = problem_from_rpc_error(error)
        return schemas.ProblemSummary(
            status=problem.status, reason=problem.reason, detail=problem.detail
        )


@router.get("/v1/home", response_model=schemas.Home, responses=errors(401), summary="Home screen")
async def home(principal: SignedIn, upstreams: UpstreamsDep, settings: SettingsDep) -> schemas.Home:
    """Profile, balances and the newest products; missing parts are listed in
    `unavailable` (by part name: profile, wallet, featured_products)."""
    deadline = settings.home_part_timeout_seconds

    async def profile() -> schemas.UserProfile:
        reply = await upstreams.identity.GetUser(
            identity_pb.GetUserRequest(user_id=principal.user_id),
            metadata=principal.metadata,
            timeout=deadline,
        )
        return conversions.user(reply.user)

    async def wallet() -> schemas.Wallet:
        reply = await upstreams.wallet.GetWallet(
            wallet_pb.GetWalletRequest(user_id=principal.user_id),
            metadata=principal.metadata,
            timeout=deadline,
        )
        return conversions.wallet(reply.wallet)

    async def featured() -> list[schemas.Product]:
        reply = await upstreams.catalogue.ListProducts(
            catalogue_pb.ListProductsRequest(page_size=FEATURED_COUNT),
            metadata=principal.metadata,
            timeout=deadline,
        )
        return [conversions.product(p) for p in reply.products]

    got_profile, got_wallet, got_featured = await asyncio.gather(
        _part(profile), _part(wallet), _part(featured)
    )
    parts = {"profile": got_profile, "wallet": got_wallet, "featured_products": got_featured}
    return schemas.Home(
        profile=got_profile if isinstance(got_profile, schemas.UserProfile) else None,
        wallet=got_wallet if isinstance(got_wallet, schemas.Wallet) else None,
        featured_products=got_featured if isinstance(got_featured, list) else None,
        unavailable={
            name: part for name, part in parts.items() if isinstance(part, schemas.ProblemSummary)
        },
    )
