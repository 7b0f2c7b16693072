"""Wiring of the wallet service: database, servicer and the shared gRPC runtime."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from superapp.identity.v1 import events_pb2 as identity_events
from superapp.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc

from services.auth import AuthInterceptor
from services.auth.identity_peer import IdentityPeer
from services.foundation import Foundation
from services.runtime.serving import GrpcService, ServiceSpec, run_service, start_grpc_service
from services.wallet.config import WalletSettings
from services.wallet.models import EVENT_TABLES
from services.wallet.policies import POLICIES
from services.wallet.servicer import WalletServicer
from services.wallet.wallets import WalletOpener

__all__ = ["SERVICE_NAME", "create_server", "main"]

SERVICE_NAME = wallet_service_pb2.DESCRIPTOR.services_by_name["WalletService"].full_name
_MIGRATIONS = Path(__file__).with_name("migrations")


async def create_server(settings: WalletSettings, tracer_provider: TracerProvider) -> GrpcService:
    """Start wallet on `settings.port` (0 picks one); the handle carries the bound port."""
    foundation = await Foundation.open(
        "wallet",
        settings,
        migrations=_MIGRATIONS,
        event_tables=EVENT_TABLES,
        tracer_provider=tracer_provider,
    )
    foundation.bus.subscribe(
        identity_events.UserRegistered,
        WalletOpener(foundation.bus.outbox, foundation.clock).on_user_registered,
    )
    identity = IdentityPeer.connect(settings, foundation.clock)
    # RPCs later releases build fall through to the generated base: UNIMPLEMENTED.
    servicer = WalletServicer()  # type: ignore[abstract]
    spec = ServiceSpec(
        domain="wallet.superapp",
        service_names=[SERVICE_NAME],
        register=lambda server: wallet_service_pb2_grpc.add_WalletServiceServicer_to_server(
            servicer, server
        ),
        probe=foundation.database.ping,
        interceptors=[AuthInterceptor(identity.verifier, [POLICIES], domain="wallet.superapp")],
        closers=[foundation.close, identity.close],
    )
    foundation.bus.start()
    return await start_grpc_service(
        spec, settings, env_prefix="WALLET_", tracer_provider=tracer_provider
    )


def main() -> None:
    """Run wallet until SIGTERM/SIGINT."""
    run_service("wallet", WalletSettings, create_server)
