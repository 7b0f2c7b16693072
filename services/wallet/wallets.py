"""Wallet lifecycle: every registered user gets exactly one wallet."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from superapp.identity.v1 import events_pb2 as identity_events
from superapp.wallet.v1 import events_pb2 as wallet_events

from services.eventbus import Envelope, Outbox
from services.runtime.clock import Clock
from services.runtime.proto_time import to_timestamp
from services.wallet.models import Wallet
from services.wallet.money_metrics import MoneyMetrics

__all__ = ["WalletOpener"]


class WalletOpener:
    """Opens a wallet when identity announces a user, and announces `WalletOpened`."""

    def __init__(self, outbox: Outbox, clock: Clock, metrics: MoneyMetrics) -> None:
        self._outbox = outbox
        self._clock = clock
        self._metrics = metrics

    async def on_user_registered(
        self,
        session: AsyncSession,
        event: identity_events.UserRegistered,
        envelope: Envelope,
    ) -> None:
        """Runs in the consumer's inbox transaction; a wallet that exists is left alone."""
        if str(uuid.UUID(event.user_id)) != event.user_id:
            raise ValueError(f"user_id {event.user_id!r} is not a canonical UUID")
        if await session.get(Wallet, event.user_id) is not None:
            return
        now = self._clock.now()
        session.add(Wallet(user_id=event.user_id, create_time=now))
        await session.flush()
        opened = wallet_events.WalletOpened(user_id=event.user_id, occur_time=to_timestamp(now))
        await self._outbox.record(session, opened, aggregate_id=event.user_id)
        self._metrics.opened(session)
