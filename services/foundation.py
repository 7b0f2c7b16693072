"""What every service stands on: its own migrated database and its event bus."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

from services.database import Database, open_database
from services.eventbus import EventTables, ServiceEventBus
from services.runtime.clock import Clock, SystemClock
from services.runtime.settings import ServiceSettings

__all__ = ["Foundation"]


@dataclass(frozen=True)
class Foundation:
    """A service's database, event bus and clock, opened together and closed together."""

    database: Database
    bus: ServiceEventBus
    clock: Clock

    @classmethod
    async def open(
        cls,
        service: str,
        settings: ServiceSettings,
        *,
        migrations: Path,
        event_tables: EventTables,
        tracer_provider: TracerProvider,
    ) -> Foundation:
        """Open and migrate `service`'s database and build (not start) its event bus."""
        prefix = f"{service.upper()}_"
        database = await open_database(
            settings.resolved_database_url(service), migrations, setting=f"{prefix}DATABASE_URL"
        )
        clock = SystemClock()
        bus = ServiceEventBus(
            service,
            nats_url=settings.nats_url,
            database=database,
            tables=event_tables,
            tracer_provider=tracer_provider,
            clock=clock,
            relay=settings.relay,
        )
        return cls(database, bus, clock)

    @property
    def closers(self) -> list[Callable[[], Awaitable[None]]]:
        """Its releases, for `ServiceSpec.closers` (released in reverse): stop the bus
        (the outbox keeps what is unpublished), then close the database. Two entries,
        so each gets its own time bound and a bus that overruns its bound cannot keep
        the database open."""
        return [self.database.dispose, self.bus.stop]
