"""Identity's copy of the mini-apps' clients, applied from miniapps' events, and the
pruning of old authorization codes; on both backends.

The handlers run as the consumer runs them: inside a write transaction (the inbox's).
Delivery order across retries is not guaranteed, so each is checked out of order too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from superapp.miniapps.v1 import events_pb2
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from services.database import Database
from services.eventbus import Envelope
from services.identity.code_retention import CodeRetention
from services.identity.miniapp_clients import (
    ClientStatus,
    MiniAppClient,
    MiniAppClients,
    UnknownClient,
)
from services.identity.models import OAUTH_CODES, OAUTH_GRANTS, Base, User
from services.runtime.ids import new_id
from services.runtime.proto_time import to_timestamp
from tests.auth.conftest import FakeClock
from tests.conftest import database_with

CLIENT = "ma_" + "0" * 32


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """Identity's tables on the parametrised backend."""
    async with database_with(database_url, Base.metadata) as it:
        yield it


def _envelope() -> Envelope:
    return Envelope(new_id(), "t", "superapp.miniapps", "s", datetime.now(UTC), {})


def _registered(mini_app_id: str) -> events_pb2.MiniAppRegistered:
    return events_pb2.MiniAppRegistered(
        mini_app_id=mini_app_id,
        mini_app=pb.MiniApp(
            mini_app_id=mini_app_id,
            client_id=CLIENT,
            redirect_uris=["https://a.example.com/cb"],
        ),
        client_secret_sha256="a" * 64,
    )


def _published(
    mini_app_id: str, permissions: list[str], when: datetime
) -> events_pb2.VersionStateChanged:
    return events_pb2.VersionStateChanged(
        mini_app_id=mini_app_id,
        version=pb.Version(state=pb.VERSION_STATE_PUBLISHED, permissions=permissions),
        occur_time=to_timestamp(when),
    )


async def _client(database: Database, clients: MiniAppClients) -> MiniAppClient | None:
    async with database.read() as session:
        return await clients.get(session, CLIENT)


async def test_events_make_and_keep_the_client(database: Database) -> None:
    clients = MiniAppClients(database, FakeClock())
    mini_app_id, now = new_id(), datetime.now(UTC)
    # A publication seen before its registration fails, so the consumer retries it.
    with pytest.raises(UnknownClient):
        async with database.write() as session:
            await clients.on_version_state_changed(
                session, _published(mini_app_id, ["wallet.pay"], now), _envelope()
            )
    for _ in range(2):  # a redelivered registration changes nothing
        async with database.write() as session:
            await clients.on_registered(session, _registered(mini_app_id), _envelope())
    client = await _client(database, clients)
    assert client is not None
    assert (client.status, client.published, client.scopes) == (ClientStatus.ACTIVE, False, ())
    newer = _published(mini_app_id, ["profile.basic", "wallet.pay"], now)
    older = _published(mini_app_id, ["wallet.pay"], now - timedelta(minutes=1))
    async with database.write() as session:
        await clients.on_version_state_changed(session, newer, _envelope())
        await clients.on_version_state_changed(session, older, _envelope())
        superseded = _published(mini_app_id, ["camera"], now + timedelta(minutes=1))
        superseded.version.state = pb.VERSION_STATE_SUPERSEDED
        await clients.on_version_state_changed(session, superseded, _envelope())
        await clients.on_secret_rotated(
            session,
            events_pb2.ClientSecretRotated(
                mini_app_id=mini_app_id, client_id=CLIENT, client_secret_sha256="b" * 64
            ),
            _envelope(),
        )
        await clients.on_suspended(
            session,
            events_pb2.MiniAppSuspended(mini_app_id=mini_app_id, client_id=CLIENT),
            _envelope(),
        )
    client = await _client(database, clients)
    assert client is not None
    assert (client.scopes, client.published, client.secret_sha256, client.status) == (
        ("profile.basic", "wallet.pay"),
        True,
        "b" * 64,
        ClientStatus.SUSPENDED,
    )


async def test_the_latest_suspension_or_reinstatement_wins_in_any_order(
    database: Database,
) -> None:
    clients = MiniAppClients(database, FakeClock())
    mini_app_id, now = new_id(), datetime.now(UTC)
    suspended = events_pb2.MiniAppSuspended(
        mini_app_id=mini_app_id, client_id=CLIENT, occur_time=to_timestamp(now)
    )
    reinstated = events_pb2.MiniAppReinstated(
        mini_app_id=mini_app_id,
        client_id=CLIENT,
        occur_time=to_timestamp(now + timedelta(seconds=1)),
    )
    # Before its registration, a reinstatement fails too, so the consumer retries it.
    with pytest.raises(UnknownClient):
        async with database.write() as session:
            await clients.on_reinstated(session, reinstated, _envelope())
    async with database.write() as session:
        await clients.on_registered(session, _registered(mini_app_id), _envelope())
    # The reinstatement (later) is applied before the suspension (retried): still ACTIVE.
    for event in (reinstated, suspended):
        async with database.write() as session:
            if isinstance(event, events_pb2.MiniAppReinstated):
                await clients.on_reinstated(session, event, _envelope())
            else:
                await clients.on_suspended(session, event, _envelope())
    client = await _client(database, clients)
    assert client is not None
    assert client.status is ClientStatus.ACTIVE
    # A second suspension, later still, takes effect; redelivered, it changes nothing.
    again = events_pb2.MiniAppSuspended(
        mini_app_id=mini_app_id,
        client_id=CLIENT,
        occur_time=to_timestamp(now + timedelta(seconds=2)),
    )
    for _ in range(2):
        async with database.write() as session:
            await clients.on_suspended(session, again, _envelope())
    async with database.write() as session:
        await clients.on_reinstated(session, reinstated, _envelope())  # an old one, late
    client = await _client(database, clients)
    assert client is not None
    assert client.status is ClientStatus.SUSPENDED


async def test_old_codes_are_pruned(database: Database) -> None:
    clock = FakeClock()
    now = clock.now()
    user_id, grant_id = new_id(), new_id()
    async with database.write() as session:
        session.add(
            User(
                user_id=user_id,
                email="a@example.com",
                display_name="A",
                password_hash="x",
                roles="user",
                create_time=now,
                update_time=now,
            )
        )
        await session.flush()
        await session.execute(
            OAUTH_GRANTS.insert().values(
                grant_id=grant_id,
                user_id=user_id,
                client_id=CLIENT,
                mini_app_id=new_id(),
                scopes=[],
                create_time=now,
                update_time=now,
                revoke_time=None,
            )
        )
        for name, expires in (("old", now - timedelta(minutes=6)), ("recent", now)):
            await session.execute(
                OAUTH_CODES.insert().values(
                    code_sha256=name,
                    grant_id=grant_id,
                    client_id=CLIENT,
                    user_id=user_id,
                    redirect_uri="https://a.example.com/cb",
                    scopes=[],
                    code_challenge="c",
                    create_time=expires - timedelta(seconds=60),
                    expire_time=expires,
                    use_time=None,
                )
            )
    retention = CodeRetention(database, clock)
    assert await retention.prune() == 1
    assert await retention.prune() == 0
    async with database.read() as session:
        left = (await session.execute(OAUTH_CODES.select())).all()
    # The recent one is kept: a reuse within a token's lifetime must still be seen.
    assert [row.code_sha256 for row in left] == ["recent"]
