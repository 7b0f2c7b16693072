"""Wiring of the identity service: database, servicer and the shared gRPC runtime."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from superapp.identity.v1 import identity_service_pb2, identity_service_pb2_grpc

from services.foundation import Foundation
from services.identity.config import IdentitySettings
from services.identity.models import EVENT_TABLES
from services.identity.servicer import IdentityServicer
from services.runtime.serving import GrpcService, ServiceSpec, run_service, start_grpc_service

__all__ = ["SERVICE_NAME", "create_server", "main"]

SERVICE_NAME = identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name
_MIGRATIONS = Path(__file__).with_name("migrations")


async def create_server(settings: IdentitySettings, tracer_provider: TracerProvider) -> GrpcService:
    """Start identity on `settings.port` (0 picks one); the handle carries the bound port."""
    foundation = await Foundation.open(
        "identity",
        settings,
        migrations=_MIGRATIONS,
        event_tables=EVENT_TABLES,
        tracer_provider=tracer_provider,
    )
    # RPCs later releases build fall through to the generated base: UNIMPLEMENTED.
    servicer = IdentityServicer()  # type: ignore[abstract]
    spec = ServiceSpec(
        domain="identity.superapp",
        service_names=[SERVICE_NAME],
        register=lambda server: identity_service_pb2_grpc.add_IdentityServiceServicer_to_server(
            servicer, server
        ),
        probe=foundation.database.ping,
        closers=[foundation.close],
    )
    foundation.bus.start()
    return await start_grpc_service(
        spec, settings, env_prefix="IDENTITY_", tracer_provider=tracer_provider
    )


def main() -> None:
    """Run identity until SIGTERM/SIGINT."""
    run_service("identity", IdentitySettings, create_server)
