"""Identity announces a user; wallet opens exactly one wallet and announces it in turn."""

from __future__ import annotations

import asyncio

import nats
from nats.js import JetStreamContext
from sqlalchemy import func, select
from superapp.identity.v1 import events_pb2 as identity_events
from superapp.wallet.v1 import events_pb2 as wallet_events

from scripts.nats_process import NatsProcess
from services.database import Database
from services.eventbus import Envelope, ensure_stream, event_type, stream_of
from services.runtime.clock import SystemClock
from services.runtime.ids import new_id
from services.wallet.models import EVENT_TABLES, Wallet
from tests.services.conftest import Running


async def _announce(jetstream: JetStreamContext, user_id: str, event_id: str, msg_id: str) -> None:
    """Publish UserRegistered exactly as identity's relay would."""
    envelope = Envelope(
        id=event_id,
        type=event_type(identity_events.UserRegistered),
        source="superapp.identity",
        subject=user_id,
        time=SystemClock().now(),
        trace={},
    )
    headers = {**envelope.headers(), "Nats-Msg-Id": msg_id}
    payload = identity_events.UserRegistered(user_id=user_id, email="a@example.com")
    await jetstream.publish(
        "superapp.identity.user.registered", payload.SerializeToString(), headers=headers
    )


async def _effects(database_url: str, user_id: str) -> tuple[int, int]:
    """(wallets, WalletOpened events recorded) for `user_id`."""
    outbox = EVENT_TABLES.outbox
    database = Database.connect(database_url)
    try:
        async with database.read() as session:
            wallets = select(func.count()).select_from(Wallet).where(Wallet.user_id == user_id)
            announced = select(func.count()).where(outbox.c.aggregate_id == user_id)
            return (
                int((await session.execute(wallets)).scalar_one()),
                int((await session.execute(announced)).scalar_one()),
            )
    finally:
        await database.dispose()


async def test_user_registered_opens_one_wallet_and_announces_it(
    wallet: Running, database_url: str, own_nats: NatsProcess
) -> None:
    user_id, event_id = new_id(), new_id()
    client = await nats.connect(own_nats.url)
    try:
        jetstream = client.jetstream()
        await ensure_stream(jetstream, stream_of("identity"))
        opened = await jetstream.subscribe("superapp.wallet.wallet.opened", ordered_consumer=True)
        await _announce(jetstream, user_id, event_id, msg_id=event_id)
        # A redelivery that JetStream cannot deduplicate (a new Nats-Msg-Id, e.g. after
        # the duplicate window): the inbox still applies the event only once.
        await _announce(jetstream, user_id, event_id, msg_id=new_id())
        announced = []
        while not announced or announced[-1].user_id != user_id:
            message = await asyncio.wait_for(opened.next_msg(timeout=30), timeout=31)
            announced.append(wallet_events.WalletOpened.FromString(message.data))
            assert message.headers is not None
            assert message.headers["ce-type"] == "superapp.wallet.v1.WalletOpened"
            assert message.headers["ce-subject"] == announced[-1].user_id
        await asyncio.sleep(0.5)
        assert await _effects(database_url, user_id) == (1, 1)
        await opened.unsubscribe()
    finally:
        await client.close()
