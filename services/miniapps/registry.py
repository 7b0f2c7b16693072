"""The registry: mini-apps, their owners and their client credentials.

Every change is written with its event in the caller's transaction (opened by the
idempotent-write wrapper) and first locks the mini-app's row, so concurrent changes
apply in commit order on PostgreSQL as SQLite's single writer does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.miniapps.v1 import events_pb2

from services.auth.caller import Caller
from services.database import Database
from services.eventbus import Outbox
from services.miniapps.access import may_manage, may_see_app, mini_app_not_found
from services.miniapps.client_credentials import new_credentials, new_secret, secret_digest
from services.miniapps.messages import mini_app_message
from services.miniapps.models import MINI_APPS
from services.miniapps.records import AppFields, AppStatus, MiniAppRecord
from services.runtime.clock import Clock
from services.runtime.ids import new_id
from services.runtime.proto_time import to_timestamp

__all__ = ["AppPage", "Registration", "Registry", "app_record"]

_A = MINI_APPS.c
_BY_ID = select(MINI_APPS).where(_A.mini_app_id == bindparam("mini_app_id"))
_LOCKED_BY_ID = _BY_ID.with_for_update()


def app_record(row: Row[Any]) -> MiniAppRecord:
    """A `mini_apps` row as a record."""
    return MiniAppRecord(
        mini_app_id=row.mini_app_id,
        client_id=row.client_id,
        developer_id=row.developer_id,
        fields=AppFields(
            name=row.name,
            category=row.category,
            description=row.description,
            icon_url=row.icon_url,
            redirect_uris=tuple(row.redirect_uris),
            network_domains=tuple(row.network_domains),
        ),
        status=AppStatus(row.status),
        published_version_id=row.published_version_id,
        publish_time=row.publish_time,
        suspend_reason=row.suspend_reason,
        create_time=row.create_time,
        update_time=row.update_time,
    )


@dataclass(frozen=True, slots=True)
class Registration:
    """A mini-app with the client secret just made for it (shown once, never stored)."""

    app: MiniAppRecord
    client_secret: str


@dataclass(frozen=True, slots=True)
class AppPage:
    """One page of a listing and the id to continue after, if there is more."""

    apps: list[MiniAppRecord]
    next_after: str | None


async def locked_app(session: AsyncSession, mini_app_id: str) -> MiniAppRecord | None:
    """The mini-app, its row locked for the rest of the transaction (PostgreSQL)."""
    row = (await session.execute(_LOCKED_BY_ID, {"mini_app_id": mini_app_id})).first()
    return None if row is None else app_record(row)


async def managed_app(session: AsyncSession, caller: Caller, mini_app_id: str) -> MiniAppRecord:
    """The caller's own mini-app, locked; NOT_FOUND for any other (no existence leak)."""
    app = await locked_app(session, mini_app_id)
    if app is None or not may_manage(caller, app):
        raise mini_app_not_found(mini_app_id)
    return app


class Registry:
    """Business rules of the registry; every change announces itself through the outbox."""

    def __init__(self, database: Database, outbox: Outbox, clock: Clock) -> None:
        self._database = database
        self._outbox = outbox
        self._clock = clock

    async def register(
        self, session: AsyncSession, caller: Caller, fields: AppFields
    ) -> Registration:
        """A new ACTIVE mini-app of `caller` with fresh client credentials."""
        now = self._clock.now()
        credentials = new_credentials()
        digest = secret_digest(credentials.client_secret)
        app = MiniAppRecord(
            mini_app_id=new_id(),
            client_id=credentials.client_id,
            developer_id=caller.user_id,
            fields=fields,
            status=AppStatus.ACTIVE,
            published_version_id=None,
            publish_time=None,
            suspend_reason="",
            create_time=now,
            update_time=now,
        )
        await session.execute(
            MINI_APPS.insert().values(
                mini_app_id=app.mini_app_id,
                client_id=app.client_id,
                developer_id=app.developer_id,
                name=fields.name,
                category=fields.category,
                description=fields.description,
                icon_url=fields.icon_url,
                redirect_uris=list(fields.redirect_uris),
                network_domains=list(fields.network_domains),
                status=app.status.value,
                published_version_id=None,
                publish_time=None,
                suspend_reason="",
                secret_sha256=digest,
                create_time=now,
                update_time=now,
            )
        )
        event = events_pb2.MiniAppRegistered(
            mini_app_id=app.mini_app_id,
            mini_app=mini_app_message(app),
            occur_time=to_timestamp(now),
            client_secret_sha256=digest,
        )
        await self._outbox.record(session, event, app.mini_app_id)
        return Registration(app, credentials.client_secret)

    async def rotate_secret(
        self, session: AsyncSession, caller: Caller, mini_app_id: str
    ) -> Registration:
        """Replace the secret of the caller's mini-app; the old one stops matching at once."""
        app = await managed_app(session, caller, mini_app_id)
        secret, now = new_secret(), self._clock.now()
        digest = secret_digest(secret)
        await session.execute(
            MINI_APPS.update()
            .where(_A.mini_app_id == mini_app_id)
            .values(secret_sha256=digest, update_time=now)
        )
        event = events_pb2.ClientSecretRotated(
            mini_app_id=mini_app_id,
            client_id=app.client_id,
            occur_time=to_timestamp(now),
            client_secret_sha256=digest,
        )
        await self._outbox.record(session, event, mini_app_id)
        return Registration(app, secret)

    async def secret_digest_of(self, client_id: str) -> str | None:
        """The stored digest of a client's secret, for client authentication."""
        async with self._database.read() as session:
            return await session.scalar(select(_A.secret_sha256).where(_A.client_id == client_id))

    async def get(self, caller: Caller, mini_app_id: str) -> MiniAppRecord:
        """The mini-app if `caller` may see it; NOT_FOUND `MINI_APP_NOT_FOUND` otherwise."""
        async with self._database.read() as session:
            row = (await session.execute(_BY_ID, {"mini_app_id": mini_app_id})).first()
        app = None if row is None else app_record(row)
        if app is None or not may_see_app(caller, app):
            raise mini_app_not_found(mini_app_id)
        return app

    async def page_of_developer(
        self, developer_id: str, *, after: str | None, size: int
    ) -> AppPage:
        """The developer's mini-apps, newest first, after the id `after`."""
        query: Select[Any] = select(MINI_APPS).where(_A.developer_id == developer_id)
        if after is not None:
            query = query.where(_A.mini_app_id < after)
        query = query.order_by(_A.mini_app_id.desc()).limit(size + 1)
        async with self._database.read() as session:
            rows = (await session.execute(query)).all()
        apps = [app_record(row) for row in rows[:size]]
        return AppPage(apps, apps[-1].mini_app_id if len(rows) > size else None)
