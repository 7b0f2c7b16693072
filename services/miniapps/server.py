"""Wiring of the miniapps service: database, registry, versions, bundles and the gRPC runtime."""

from __future__ import annotations

import functools
from datetime import timedelta
from pathlib import Path

import grpc
import httpx
from opentelemetry.sdk.trace import TracerProvider
from superapp.miniapps.v1 import events_pb2, miniapps_service_pb2, miniapps_service_pb2_grpc
from superapp.orders.v1 import orders_service_pb2

from services.auth import AuthGuard
from services.auth.identity_peer import IdentityPeer
from services.auth.miniapp_verifier import MiniAppTokenVerifier, miniapp_verifier
from services.auth.service_token import ServiceToken
from services.database.idempotency import IdempotentWrites
from services.foundation import Foundation
from services.miniapps.bundles import BUNDLE_MAX_BYTES, RECEIVE_MAX_BYTES, BundleStore
from services.miniapps.checker import Checker, Review
from services.miniapps.config import MiniAppsSettings
from services.miniapps.discovery import Discovery
from services.miniapps.models import EVENT_TABLES, IDEMPOTENCY_KEYS, SERVICE_SECRETS
from services.miniapps.payment_orders import PaymentOrders
from services.miniapps.payment_requests import PaymentRequests
from services.miniapps.policies import POLICIES
from services.miniapps.registry import Registry
from services.miniapps.reports import Reports
from services.miniapps.request_checks import REQUEST_CHECKS
from services.miniapps.review import BundleLimits, review_bundle
from services.miniapps.review_metrics import ReviewMetrics
from services.miniapps.servicer import MiniAppsServicer
from services.miniapps.settlement import Settlement
from services.miniapps.versions import Versions
from services.miniapps.webhook_delivery import WebhookDeliverer
from services.miniapps.webhooks import Webhooks
from services.runtime.channels import open_channel
from services.runtime.clock import Clock
from services.runtime.serving import GrpcService, ServiceSpec, run_service, start_grpc_service

__all__ = ["SERVICE_NAME", "create_server", "main"]

SERVICE_NAME = miniapps_service_pb2.DESCRIPTOR.services_by_name["MiniAppsService"].full_name
_MIGRATIONS = Path(__file__).with_name("migrations")
_DOMAIN = "miniapps.superapp"
_ORDERS_SERVICE = orders_service_pb2.DESCRIPTOR.services_by_name["OrdersService"]


def default_review() -> Review:
    """The review library, held to the contract's bundle limit (8 MiB, above the
    library's own default) so that every bundle an upload accepts can pass."""
    return functools.partial(review_bundle, limits=BundleLimits(max_bundle_bytes=BUNDLE_MAX_BYTES))


async def create_server(
    settings: MiniAppsSettings,
    tracer_provider: TracerProvider,
    *,
    clock: Clock | None = None,
    review: Review | None = None,
) -> GrpcService:
    """Start miniapps on `settings.port` (0 picks one); the handle carries the bound port.

    `review` checks a bundle (`default_review()` unless a test passes another).
    """
    foundation = await Foundation.open(
        "miniapps",
        settings,
        migrations=_MIGRATIONS,
        event_tables=EVENT_TABLES,
        tracer_provider=tracer_provider,
        secrets=SERVICE_SECRETS,
        clock=clock,
    )
    database, outbox, clock = foundation.database, foundation.bus.outbox, foundation.clock
    identity = IdentityPeer.connect(settings, clock)
    bundles = BundleStore(database, clock)
    versions = Versions(database, outbox, clock, bundles)
    checker = Checker(
        database,
        versions,
        clock,
        review or default_review(),
        ReviewMetrics(foundation.metrics),
        lease=timedelta(seconds=settings.check_lease_seconds),
        interval_seconds=settings.check_interval_seconds,
        workers=settings.check_workers,
    )
    foundation.bus.subscribe(events_pb2.VersionStateChanged, checker.on_version_state_changed)
    # Redirects are not followed: a delivery goes to the registered URL or fails.
    webhook_client = httpx.AsyncClient(
        timeout=settings.webhook_timeout_seconds, follow_redirects=False
    )
    deliverer = WebhookDeliverer(
        database,
        clock,
        webhook_client,
        lease=timedelta(seconds=settings.webhook_lease_seconds),
        max_attempts=settings.webhook_max_attempts,
        backoff_initial_seconds=settings.webhook_backoff_initial_seconds,
        backoff_max_seconds=settings.webhook_backoff_max_seconds,
        interval_seconds=settings.webhook_interval_seconds,
    )
    webhooks = Webhooks(database, clock)
    payments = PaymentRequests(
        database,
        clock,
        webhooks,
        ttl=timedelta(seconds=settings.payment_request_ttl_seconds),
        settle_grace=timedelta(seconds=settings.settle_lease_seconds),
    )
    # The service's own identity (role system): introspects mini-app tokens and places
    # payment orders. Without it neither is possible, and both are refused clearly.
    mini_app_tokens: MiniAppTokenVerifier | None = None
    settlement: Settlement | None = None
    orders_channel: grpc.aio.Channel | None = None
    if settings.client_secret is not None:
        service_token = ServiceToken(
            identity.channel, settings.client_id, settings.client_secret.get_secret_value(), clock
        )
        mini_app_tokens = miniapp_verifier(
            identity.channel, service_token, issuer=settings.token_issuer, clock=clock
        )
        orders_channel = open_channel(
            settings.orders_addr,
            [_ORDERS_SERVICE],
            timeout_seconds=settings.payment_timeout_seconds,
            tracer_provider=tracer_provider,
        )
        settlement = Settlement(
            payments,
            PaymentOrders(
                orders_channel, service_token, timeout_seconds=settings.payment_timeout_seconds
            ),
            clock,
            lease=timedelta(seconds=settings.settle_lease_seconds),
            interval_seconds=settings.settle_interval_seconds,
            backoff_max_seconds=settings.settle_backoff_max_seconds,
        )
    writes = IdempotentWrites(database, IDEMPOTENCY_KEYS, clock)
    retention = writes.retention(settings.idempotency_retention)
    servicer = MiniAppsServicer(
        registry=Registry(database, outbox, clock),
        versions=versions,
        bundles=bundles,
        reports=Reports(database),
        discovery=Discovery(database),
        writes=writes,
        page_tokens=foundation.page_tokens,
        webhooks=webhooks,
        payments=payments,
        settlement=settlement,
        announce=deliverer.wake,
    )
    spec = ServiceSpec(
        metrics=foundation.metrics,
        domain=_DOMAIN,
        service_names=[SERVICE_NAME],
        register=lambda server: miniapps_service_pb2_grpc.add_MiniAppsServiceServicer_to_server(
            servicer, server
        ),
        probe=database.ping,
        ready_when=foundation.bus.wait_ready,
        guards=[
            AuthGuard(identity.verifier, [POLICIES], domain=_DOMAIN, mini_apps=mini_app_tokens)
        ],
        request_checks=[REQUEST_CHECKS],
        max_receive_bytes=RECEIVE_MAX_BYTES,
        closers=[
            *foundation.closers,
            identity.close,
            retention.close,
            checker.close,
            deliverer.close,
            webhook_client.aclose,
            *([settlement.close] if settlement is not None else []),
            *([orders_channel.close] if orders_channel is not None else []),
        ],
    )
    foundation.bus.start()
    retention.start()
    checker.start()
    deliverer.start()
    if settlement is not None:
        settlement.start()
    return await start_grpc_service(
        spec, settings, env_prefix="MINIAPPS_", tracer_provider=tracer_provider
    )


def main() -> None:
    """Run miniapps until SIGTERM/SIGINT."""
    run_service("miniapps", MiniAppsSettings, create_server)
