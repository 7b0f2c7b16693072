"""Catalogue reads at scale: GetProduct, ListProducts with a category filter, and
SearchProducts, against a catalogue of 100,000 published products.

The products are seeded once per run into the catalogue's SQLite file before the service
starts (`SUPERAPP_BENCH_CATALOGUE_PRODUCTS` changes how many, for quick runs). Each call
asks for something else in turn (products, categories, search words), so no single row
or query stays hot.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from superapp.catalogue.v1 import catalogue_service_pb2 as pb
from superapp.catalogue.v1 import catalogue_service_pb2_grpc

from scripts.benchmark.catalogue_seed import SeededCatalogue, seed_catalogue
from scripts.benchmark.environment import Environment
from scripts.benchmark.metrics_off import METRICS_COST, metrics_off_settings
from scripts.benchmark.process_cpu import Processes
from scripts.benchmark.rpc_scenarios import GRPC_ECHO
from scripts.benchmark.scenario import Call, ClosedLoop, Scenario, Target

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from superapp.catalogue.v1.catalogue_service_pb2_grpc import CatalogueServiceAsyncStub

__all__ = ["catalogue_scenarios", "product_count"]

_PRODUCTS_SETTING = "SUPERAPP_BENCH_CATALOGUE_PRODUCTS"
GET_PRODUCT = "catalogue.GetProduct"


async def _catalogue(
    env: Environment, *, metrics: bool = True
) -> tuple[SeededCatalogue, list[CatalogueServiceAsyncStub], Processes]:
    """The seeded data, a stub per client channel to the catalogue serving it, and the
    catalogue's processes; without `metrics`, a catalogue that records none, on a
    database seeded alike."""
    if metrics:
        database = env.work_dir / "catalogue" / "catalogue.db"
        seeded = await seed_catalogue(f"sqlite+aiosqlite:///{database}", product_count())
        address = await env.service("catalogue")
    else:
        url = f"sqlite+aiosqlite:///{env.work_dir / 'catalogue-metrics-off.db'}"
        seeded = await seed_catalogue(url, product_count())
        settings = await metrics_off_settings(env, "catalogue")
        address = await env.service("catalogue", {**settings, "CATALOGUE_DATABASE_URL": url})
    channels = await env.channels(address)
    stubs = [catalogue_service_pb2_grpc.CatalogueServiceStub(c) for c in channels]
    return seeded, stubs, env.processes(address)


def product_count() -> int:
    """How many products the catalogue scenarios read from (100,000 unless set)."""
    return int(os.environ.get(_PRODUCTS_SETTING, "100000"))


def _rotating(method: Callable[..., Any], requests: Iterator[Any], timeout: float) -> Call:
    async def call() -> object:
        return await method(next(requests), timeout=timeout)

    return call


def _get_product(*, metrics: bool) -> Callable[[Environment], Awaitable[ClosedLoop]]:
    async def setup(env: Environment) -> ClosedLoop:
        seeded, stubs, server = await _catalogue(env, metrics=metrics)
        requests = itertools.cycle([pb.GetProductRequest(product_id=i) for i in seeded.product_ids])
        return ClosedLoop(
            [_rotating(stub.GetProduct, requests, env.call_timeout) for stub in stubs], server
        )

    return setup


async def _list_products(env: Environment) -> ClosedLoop:
    seeded, stubs, server = await _catalogue(env)
    requests = itertools.cycle(
        [pb.ListProductsRequest(category_id=i, page_size=20) for i in seeded.root_category_ids]
    )
    return ClosedLoop(
        [_rotating(stub.ListProducts, requests, env.call_timeout) for stub in stubs], server
    )


async def _search_products(env: Environment) -> ClosedLoop:
    seeded, stubs, server = await _catalogue(env)
    requests = itertools.cycle(
        [pb.SearchProductsRequest(query=word, page_size=20) for word in seeded.words[::29]]
    )
    return ClosedLoop(
        [_rotating(stub.SearchProducts, requests, env.call_timeout) for stub in stubs], server
    )


def catalogue_scenarios() -> list[Scenario]:
    """The catalogue's reads at scale, each beside the echo ceiling."""
    return [
        Scenario(
            GET_PRODUCT,
            _get_product(metrics=True),
            ceiling=GRPC_ECHO,
            target=Target("cpu vs echo", at_most=1.5, source="a point read by key"),
        ),
        Scenario(
            f"{GET_PRODUCT} (metrics off)",
            _get_product(metrics=False),
            ceiling=GET_PRODUCT,
            target=METRICS_COST,
        ),
        Scenario("catalogue.ListProducts (category)", _list_products, ceiling=GRPC_ECHO),
        Scenario(
            "catalogue.SearchProducts",
            _search_products,
            ceiling=GRPC_ECHO,
            latency_versus="catalogue.GetProduct",
        ),
    ]
