"""Wiring of the wallet service: database, servicer and the shared gRPC runtime."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from superapp.identity.v1 import events_pb2 as identity_events
from superapp.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc

from services.auth import AuthGuard
from services.auth.identity_peer import IdentityPeer
from services.database.batch_writer import BatchWriter
from services.database.idempotency import IdempotentWrites
from services.foundation import Foundation
from services.runtime.clock import Clock
from services.runtime.serving import GrpcService, ServiceSpec, run_service, start_grpc_service
from services.runtime.sweeper import Sweeper
from services.wallet.balances import Balances
from services.wallet.config import WalletSettings
from services.wallet.history import History
from services.wallet.holds import SWEEP_BATCH, Holds
from services.wallet.ledger import Ledger
from services.wallet.models import EVENT_TABLES, IDEMPOTENCY_KEYS, SERVICE_SECRETS
from services.wallet.money_metrics import MoneyMetrics
from services.wallet.policies import POLICIES
from services.wallet.servicer import WalletServicer
from services.wallet.transfers import Transfers, check_limit
from services.wallet.wallets import WalletOpener

__all__ = ["SERVICE_NAME", "create_server", "main"]

SERVICE_NAME = wallet_service_pb2.DESCRIPTOR.services_by_name["WalletService"].full_name
_MIGRATIONS = Path(__file__).with_name("migrations")


async def create_server(
    settings: WalletSettings, tracer_provider: TracerProvider, *, clock: Clock | None = None
) -> GrpcService:
    """Start wallet on `settings.port` (0 picks one); the handle carries the bound port.

    `clock` (the system's by default) is the time of holds, their expiry and tokens.
    """
    foundation = await Foundation.open(
        "wallet",
        settings,
        migrations=_MIGRATIONS,
        event_tables=EVENT_TABLES,
        tracer_provider=tracer_provider,
        secrets=SERVICE_SECRETS,
        clock=clock,
    )
    metrics = MoneyMetrics(foundation.metrics)
    foundation.bus.subscribe(
        identity_events.UserRegistered,
        WalletOpener(foundation.bus.outbox, foundation.clock, metrics).on_user_registered,
    )
    identity = IdentityPeer.connect(settings, foundation.clock)
    database, outbox, clock = foundation.database, foundation.bus.outbox, foundation.clock
    writer = BatchWriter(
        database,
        max_batch=settings.write_batch_max,
        after_commit=[outbox.wake],
        busy=foundation.calls.others,
    )
    ledger = Ledger(database.dialect)
    limit_for = settings.transfer_limit
    holds = Holds(
        database,
        ledger,
        outbox,
        clock,
        check_limit=lambda currency, amount: check_limit(limit_for, currency, amount),
    )

    async def expire_holds() -> int:
        # Through the ledger's writer, like every other change of balances.
        return await writer.submit(
            lambda connection: holds.expire_due(connection, clock.now(), user_id=None)
        )

    sweeper = Sweeper(
        "hold-expiry",
        expire_holds,
        batch=SWEEP_BATCH,
        interval_seconds=settings.hold_sweep_seconds,
    )
    writes = IdempotentWrites(database, IDEMPOTENCY_KEYS, clock)
    retention = writes.retention(settings.idempotency_retention)
    servicer = WalletServicer(
        writer=writer,
        writes=writes,
        transfers=Transfers(ledger, holds, outbox, clock, limit_for),
        holds=holds,
        balances=Balances(database, clock),
        history=History(database),
        page_tokens=foundation.page_tokens,
        metrics=metrics,
    )
    spec = ServiceSpec(
        metrics=foundation.metrics,
        domain="wallet.superapp",
        service_names=[SERVICE_NAME],
        register=lambda server: wallet_service_pb2_grpc.add_WalletServiceServicer_to_server(
            servicer, server
        ),
        probe=foundation.database.ping,
        ready_when=foundation.bus.wait_ready,
        # Calls in flight first, so that the writer knows when a lone command's
        # transaction would hold up other calls (see BatchWriter's `busy`).
        guards=[
            foundation.calls,
            AuthGuard(identity.verifier, [POLICIES], domain="wallet.superapp"),
        ],
        # Released in reverse, after in-flight calls finished: stop sweeping, drain
        # the writer, then release the identity channel, the bus and the database.
        closers=[
            *foundation.closers,
            identity.close,
            writer.close,
            sweeper.close,
            retention.close,
        ],
    )
    writer.start()
    sweeper.start()
    retention.start()
    foundation.bus.start()
    return await start_grpc_service(
        spec, settings, env_prefix="WALLET_", tracer_provider=tracer_provider
    )


def main() -> None:
    """Run wallet until SIGTERM/SIGINT."""
    run_service("wallet", WalletSettings, create_server)
