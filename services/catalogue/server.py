"""Wiring of the catalogue service: database, domain, servicer and the shared gRPC runtime."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from superapp.catalogue.v1 import catalogue_service_pb2, catalogue_service_pb2_grpc

from services.auth import AuthGuard
from services.auth.identity_peer import IdentityPeer
from services.catalogue.categories import CategoryTree
from services.catalogue.config import CatalogueSettings
from services.catalogue.inventory import SWEEP_BATCH, Inventory
from services.catalogue.listing import ProductListing
from services.catalogue.models import EVENT_TABLES, IDEMPOTENCY_KEYS, SERVICE_SECRETS
from services.catalogue.policies import POLICIES
from services.catalogue.products import Products
from services.catalogue.request_checks import REQUEST_CHECKS
from services.catalogue.search import SearchQuery
from services.catalogue.servicer import CatalogueServicer
from services.catalogue.stock_metrics import StockMetrics
from services.database.idempotency import IdempotentWrites
from services.foundation import Foundation
from services.runtime.clock import Clock
from services.runtime.serving import GrpcService, ServiceSpec, run_service, start_grpc_service
from services.runtime.sweeper import Sweeper

__all__ = ["SERVICE_NAME", "create_server", "main"]

SERVICE_NAME = catalogue_service_pb2.DESCRIPTOR.services_by_name["CatalogueService"].full_name
_MIGRATIONS = Path(__file__).with_name("migrations")


async def create_server(
    settings: CatalogueSettings, tracer_provider: TracerProvider, *, clock: Clock | None = None
) -> GrpcService:
    """Start catalogue on `settings.port` (0 picks one); the handle carries the bound port.

    `clock` (the system's by default) is the time of reservations, products and tokens.
    """
    foundation = await Foundation.open(
        "catalogue",
        settings,
        migrations=_MIGRATIONS,
        event_tables=EVENT_TABLES,
        tracer_provider=tracer_provider,
        secrets=SERVICE_SECRETS,
        clock=clock,
    )
    database, outbox, clock = foundation.database, foundation.bus.outbox, foundation.clock
    identity = IdentityPeer.connect(settings, clock)
    inventory = Inventory(database, outbox, clock, StockMetrics(foundation.metrics))
    # Reads treat a reservation as expired the instant it is due; the sweep records it
    # and returns its units shortly after.
    sweeper = Sweeper(
        "reservation-expiry",
        lambda: inventory.expire_due(SWEEP_BATCH),
        batch=SWEEP_BATCH,
        interval_seconds=settings.reservation_sweep_seconds,
    )
    writes = IdempotentWrites(database, IDEMPOTENCY_KEYS, clock)
    retention = writes.retention(settings.idempotency_retention)
    servicer = CatalogueServicer(
        categories=CategoryTree(database, clock),
        products=Products(database, outbox, clock),
        listing=ProductListing(database, clock),
        search=SearchQuery(database, clock),
        inventory=inventory,
        writes=writes,
        page_tokens=foundation.page_tokens,
    )
    spec = ServiceSpec(
        metrics=foundation.metrics,
        domain="catalogue.superapp",
        service_names=[SERVICE_NAME],
        register=lambda server: catalogue_service_pb2_grpc.add_CatalogueServiceServicer_to_server(
            servicer, server
        ),
        probe=database.ping,
        ready_when=foundation.bus.wait_ready,
        guards=[
            foundation.calls,
            AuthGuard(identity.verifier, [POLICIES], domain="catalogue.superapp"),
        ],
        request_checks=[REQUEST_CHECKS],
        closers=[*foundation.closers, identity.close, sweeper.close, retention.close],
    )
    foundation.bus.start()
    sweeper.start()
    retention.start()
    return await start_grpc_service(
        spec, settings, env_prefix="CATALOGUE_", tracer_provider=tracer_provider
    )


def main() -> None:
    """Run catalogue until SIGTERM/SIGINT."""
    run_service("catalogue", CatalogueSettings, create_server)
