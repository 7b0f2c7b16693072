"""The services the BFF talks to: one long-lived channel and one stub each.

The stubs are the ones `scripts/generate` makes for any team; the BFF adds nothing but
the channel policy of `services.runtime.channels` (balancing over healthy replicas,
deadlines, read retries, tracing).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2
from opentelemetry.sdk.trace import TracerProvider
from superapp.catalogue.v1 import catalogue_service_pb2, catalogue_service_pb2_grpc
from superapp.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from superapp.miniapps.v1 import miniapps_service_pb2, miniapps_service_pb2_grpc
from superapp.orders.v1 import orders_service_pb2, orders_service_pb2_grpc
from superapp.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc

from bff.config import BffSettings
from services.miniapps.bundles import RECEIVE_MAX_BYTES
from services.runtime.channels import open_channel
from services.runtime.health_client import check_health

__all__ = ["Upstreams"]


@dataclass(frozen=True)
class Upstreams:
    """Stubs for identity, wallet, catalogue, orders and miniapps over their channels."""

    identity_channel: grpc.aio.Channel
    wallet_channel: grpc.aio.Channel
    catalogue_channel: grpc.aio.Channel
    orders_channel: grpc.aio.Channel
    miniapps_channel: grpc.aio.Channel
    identity: identity_service_pb2_grpc.IdentityServiceAsyncStub
    wallet: wallet_service_pb2_grpc.WalletServiceAsyncStub
    catalogue: catalogue_service_pb2_grpc.CatalogueServiceAsyncStub
    orders: orders_service_pb2_grpc.OrdersServiceAsyncStub
    miniapps: miniapps_service_pb2_grpc.MiniAppsServiceAsyncStub

    @classmethod
    def connect(cls, settings: BffSettings, tracer_provider: TracerProvider | None) -> Upstreams:
        """Open the channels (lazily connecting: an upstream may come up later)."""

        def channel(
            address: str, descriptor: ServiceDescriptor, max_message_bytes: int | None = None
        ) -> grpc.aio.Channel:
            return open_channel(
                address,
                [descriptor],
                timeout_seconds=settings.upstream_timeout_seconds,
                tracer_provider=tracer_provider,
                max_message_bytes=max_message_bytes,
            )

        identity = channel(
            settings.identity_addr,
            identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"],
        )
        wallet = channel(
            settings.wallet_addr, wallet_service_pb2.DESCRIPTOR.services_by_name["WalletService"]
        )
        catalogue = channel(
            settings.catalogue_addr,
            catalogue_service_pb2.DESCRIPTOR.services_by_name["CatalogueService"],
        )
        orders = channel(
            settings.orders_addr, orders_service_pb2.DESCRIPTOR.services_by_name["OrdersService"]
        )
        # Bundles (up to 8 MiB) travel both ways: uploads and GetBundle.
        miniapps = channel(
            settings.miniapps_addr,
            miniapps_service_pb2.DESCRIPTOR.services_by_name["MiniAppsService"],
            RECEIVE_MAX_BYTES,
        )
        return cls(
            identity_channel=identity,
            wallet_channel=wallet,
            catalogue_channel=catalogue,
            orders_channel=orders,
            miniapps_channel=miniapps,
            identity=identity_service_pb2_grpc.IdentityServiceStub(identity),
            wallet=wallet_service_pb2_grpc.WalletServiceStub(wallet),
            catalogue=catalogue_service_pb2_grpc.CatalogueServiceStub(catalogue),
            orders=orders_service_pb2_grpc.OrdersServiceStub(orders),
            miniapps=miniapps_service_pb2_grpc.MiniAppsServiceStub(miniapps),
        )

    @property
    def _channels(self) -> dict[str, grpc.aio.Channel]:
        return {
            "identity": self.identity_channel,
            "wallet": self.wallet_channel,
            "catalogue": self.catalogue_channel,
            "orders": self.orders_channel,
            "miniapps": self.miniapps_channel,
        }

    async def health(self, deadline: float) -> dict[str, str]:
        """Each upstream's grpc.health.v1 status name, or why it could not be asked."""
        names, channels = tuple(self._channels), tuple(self._channels.values())
        answers = await asyncio.gather(
            *(check_health(channel, deadline=deadline) for channel in channels),
            return_exceptions=True,
        )
        report: dict[str, str] = {}
        for name, answer in zip(names, answers, strict=True):
            if isinstance(answer, grpc.aio.AioRpcError):
                report[name] = answer.code().name
            elif isinstance(answer, BaseException):
                report[name] = type(answer).__name__
            else:
                report[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(answer)
        return report

    async def close(self) -> None:
        """Close every channel."""
        for channel in self._channels.values():
            await channel.close()
