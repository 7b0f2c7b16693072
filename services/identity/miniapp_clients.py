"""Identity's copy of the mini-apps' OAuth clients, kept from the miniapps service's events.

Identity is the authorization server but not the registry: it never reads miniapps'
tables (database per service). What it needs of each client (id, the SHA-256 of its
secret, redirect URIs, the scopes the published manifest requests, and whether it is
suspended) travels on the bus as event-carried state and lands in `oauth_clients`,
in the consumer's inbox transaction, so a redelivered event changes nothing.

One mini-app's events are published in commit order, but a handler that failed is
retried after later ones may have been applied; each handler is therefore written to
be order-tolerant: an older suspension or reinstatement never replaces a newer one, nor
an older publication a newer one, and an event about a client not yet known fails so
that it is retried once the registration has arrived.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.miniapps.v1 import events_pb2, miniapps_service_pb2

from services.database import Database
from services.database.insert_if_absent import insert_if_absent
from services.eventbus import Envelope
from services.identity.models import OAUTH_CLIENTS
from services.runtime.clock import Clock

__all__ = ["ClientStatus", "MiniAppClient", "MiniAppClients", "UnknownClient", "client_of"]

_C = OAUTH_CLIENTS.c


class ClientStatus(enum.StrEnum):
    """A client's standing, as its mini-app's; stored by name."""

    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


class UnknownClient(Exception):
    """An event names a mini-app whose registration identity has not seen yet: the
    consumer retries it later."""


@dataclass(frozen=True, slots=True)
class MiniAppClient:
    """One mini-app as the authorization server knows it."""

    client_id: str
    mini_app_id: str
    secret_sha256: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    """The permissions the published manifest requests; empty before publication."""
    status: ClientStatus
    published: bool


def client_of(row: Row[Any]) -> MiniAppClient:
    """An `oauth_clients` row as a record."""
    return MiniAppClient(
        client_id=row.client_id,
        mini_app_id=row.mini_app_id,
        secret_sha256=row.secret_sha256,
        redirect_uris=tuple(row.redirect_uris),
        scopes=tuple(row.scopes),
        status=ClientStatus(row.status),
        published=row.publish_time is not None,
    )


def _time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


class MiniAppClients:
    """Applies miniapps' events to `oauth_clients` and reads clients back."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    async def on_registered(
        self, session: AsyncSession, event: events_pb2.MiniAppRegistered, envelope: Envelope
    ) -> None:
        """A new client, ACTIVE, with no scopes until a version is published."""
        app = event.mini_app
        await session.execute(
            insert_if_absent(self._database, OAUTH_CLIENTS).values(
                client_id=app.client_id,
                mini_app_id=event.mini_app_id,
                secret_sha256=event.client_secret_sha256,
                redirect_uris=list(app.redirect_uris),
                scopes=[],
                status=ClientStatus.ACTIVE.value,
                publish_time=None,
                update_time=self._clock.now(),
            )
        )

    async def on_secret_rotated(
        self, session: AsyncSession, event: events_pb2.ClientSecretRotated, envelope: Envelope
    ) -> None:
        """The new secret's digest replaces the old one: the old secret stops working."""
        await self._existing(session, event.client_id)
        await session.execute(
            OAUTH_CLIENTS.update()
            .where(_C.client_id == event.client_id)
            .values(secret_sha256=event.client_secret_sha256, update_time=self._clock.now())
        )

    async def on_suspended(
        self, session: AsyncSession, event: events_pb2.MiniAppSuspended, envelope: Envelope
    ) -> None:
        """Consent, exchange and introspection refuse the client from this commit on
        (unless a later reinstatement was applied already)."""
        await self._set_status(
            session, event.client_id, ClientStatus.SUSPENDED, _time(event.occur_time)
        )

    async def on_reinstated(
        self, session: AsyncSession, event: events_pb2.MiniAppReinstated, envelope: Envelope
    ) -> None:
        """The client is in good standing again: its grants' tokens are active again
        (unless a later suspension was applied already)."""
        await self._set_status(
            session, event.client_id, ClientStatus.ACTIVE, _time(event.occur_time)
        )

    async def _set_status(
        self, session: AsyncSession, client_id: str, status: ClientStatus, changed: datetime
    ) -> None:
        row = (
            await session.execute(
                select(_C.status_time).where(_C.client_id == client_id).with_for_update()
            )
        ).first()
        if row is None:
            raise UnknownClient(f"client {client_id} is not known yet")
        if row.status_time is not None and row.status_time > changed:
            return
        await session.execute(
            OAUTH_CLIENTS.update()
            .where(_C.client_id == client_id)
            .values(status=status.value, status_time=changed, update_time=self._clock.now())
        )

    async def on_version_state_changed(
        self, session: AsyncSession, event: events_pb2.VersionStateChanged, envelope: Envelope
    ) -> None:
        """A version became PUBLISHED: its manifest's permissions become the scopes a
        user may grant, unless a later publication was applied already."""
        if event.version.state != miniapps_service_pb2.VERSION_STATE_PUBLISHED:
            return
        row = (
            await session.execute(
                select(_C.client_id, _C.publish_time)
                .where(_C.mini_app_id == event.mini_app_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            raise UnknownClient(f"mini-app {event.mini_app_id} is not known yet")
        published = _time(event.occur_time)
        if row.publish_time is not None and row.publish_time > published:
            return
        await session.execute(
            OAUTH_CLIENTS.update()
            .where(_C.client_id == row.client_id)
            .values(
                scopes=list(event.version.permissions),
                publish_time=published,
                update_time=self._clock.now(),
            )
        )

    async def get(self, session: AsyncSession, client_id: str) -> MiniAppClient | None:
        """The client, or None if identity has not heard of it."""
        row = (
            await session.execute(select(OAUTH_CLIENTS).where(_C.client_id == client_id))
        ).first()
        return None if row is None else client_of(row)

    async def by_ids(self, session: AsyncSession, client_ids: Sequence[str]) -> list[MiniAppClient]:
        """The known clients among `client_ids`."""
        rows = await session.execute(select(OAUTH_CLIENTS).where(_C.client_id.in_(client_ids)))
        return [client_of(row) for row in rows]

    async def _existing(self, session: AsyncSession, client_id: str) -> None:
        found = await session.scalar(
            select(_C.client_id).where(_C.client_id == client_id).with_for_update()
        )
        if found is None:
            raise UnknownClient(f"client {client_id} is not known yet")
