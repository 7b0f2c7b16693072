"""Wiring of the orders service: database, peers, saga, reconciler and the gRPC runtime."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from superapp.catalogue.v1 import catalogue_service_pb2
from superapp.orders.v1 import orders_service_pb2, orders_service_pb2_grpc
from superapp.wallet.v1 import wallet_service_pb2

from services.auth import AuthGuard
from services.auth.identity_peer import IdentityPeer
from services.auth.service_token import ServiceToken
from services.foundation import Foundation
from services.orders.checkout import Checkout
from services.orders.checkout_metrics import CheckoutMetrics
from services.orders.config import OrdersSettings
from services.orders.drivers import Drivers
from services.orders.models import EVENT_TABLES, SERVICE_SECRETS
from services.orders.order_book import OrderBook
from services.orders.peers import Peers
from services.orders.policies import POLICIES
from services.orders.reconciler import BATCH, Reconciler
from services.orders.saga import OrderSaga, StepObserver
from services.orders.servicer import OrdersServicer
from services.runtime.channels import open_channel
from services.runtime.serving import GrpcService, ServiceSpec, run_service, start_grpc_service
from services.runtime.sweeper import Sweeper

__all__ = ["SERVICE_NAME", "create_server", "main"]

SERVICE_NAME = orders_service_pb2.DESCRIPTOR.services_by_name["OrdersService"].full_name
_MIGRATIONS = Path(__file__).with_name("migrations")


async def create_server(
    settings: OrdersSettings,
    tracer_provider: TracerProvider,
    *,
    step_observer: StepObserver | None = None,
) -> GrpcService:
    """Start orders on `settings.port` (0 picks one); the handle carries the bound port.

    `step_observer` is told of every saga step that succeeded (a seam for tests that
    stop a peer, the caller or this service between two steps).
    """
    foundation = await Foundation.open(
        "orders",
        settings,
        migrations=_MIGRATIONS,
        event_tables=EVENT_TABLES,
        tracer_provider=tracer_provider,
        secrets=SERVICE_SECRETS,
    )
    database, clock = foundation.database, foundation.clock
    identity = IdentityPeer.connect(settings, clock)
    catalogue_channel = open_channel(
        settings.catalogue_addr,
        [catalogue_service_pb2.DESCRIPTOR.services_by_name["CatalogueService"]],
        timeout_seconds=settings.step_timeout_seconds,
    )
    wallet_channel = open_channel(
        settings.wallet_addr,
        [wallet_service_pb2.DESCRIPTOR.services_by_name["WalletService"]],
        timeout_seconds=settings.step_timeout_seconds,
    )
    token = ServiceToken(
        identity.channel,
        settings.client_id,
        settings.client_secret.get_secret_value(),
        clock,
        timeout_seconds=settings.step_timeout_seconds,
    )
    peers = Peers(
        catalogue_channel, wallet_channel, token, timeout_seconds=settings.step_timeout_seconds
    )
    lease = timedelta(seconds=settings.lease_seconds)
    book = OrderBook(
        database,
        foundation.bus.outbox,
        clock,
        lease=lease,
        metrics=CheckoutMetrics(
            foundation.metrics, merchant_labels=settings.metrics_merchant_labels
        ),
    )
    reservation_ttl = timedelta(seconds=settings.reservation_ttl_seconds)
    saga = OrderSaga(
        book,
        peers,
        clock,
        reservation_ttl=reservation_ttl,
        hold_ttl=reservation_ttl + timedelta(seconds=settings.capture_grace_seconds),
        max_collections=settings.max_collections,
        observer=step_observer,
    )
    drivers = Drivers(
        saga,
        book,
        first_retry=timedelta(seconds=settings.reconcile_seconds),
        longest_retry=timedelta(seconds=settings.retry_backoff_max_seconds),
    )
    reconciler = Sweeper(
        "order-reconciler",
        Reconciler(book, drivers).settle_due,
        batch=BATCH,
        interval_seconds=settings.reconcile_seconds,
    )
    servicer = OrdersServicer(
        checkout=Checkout(book, peers, drivers, clock, wait_seconds=settings.step_timeout_seconds),
        book=book,
        page_tokens=foundation.page_tokens,
    )

    async def close_peers() -> None:
        await catalogue_channel.close()
        await wallet_channel.close()

    spec = ServiceSpec(
        metrics=foundation.metrics,
        domain="orders.superapp",
        service_names=[SERVICE_NAME],
        register=lambda server: orders_service_pb2_grpc.add_OrdersServiceServicer_to_server(
            servicer, server
        ),
        probe=database.ping,
        ready_when=foundation.bus.wait_ready,
        guards=[AuthGuard(identity.verifier, [POLICIES], domain="orders.superapp")],
        # Released in reverse, after in-flight calls finished: stop reconciling, stop the
        # drives (their leases lapse or are given back), then the channels, the bus and
        # the database.
        closers=[
            *foundation.closers,
            identity.close,
            close_peers,
            drivers.close,
            reconciler.close,
        ],
    )
    foundation.bus.start()
    reconciler.start()
    return await start_grpc_service(
        spec, settings, env_prefix="ORDERS_", tracer_provider=tracer_provider
    )


def main() -> None:
    """Run orders until SIGTERM/SIGINT."""
    run_service("orders", OrdersSettings, create_server)
