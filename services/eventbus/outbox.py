"""Record events in the same transaction as the state change they announce."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message
from opentelemetry import propagate
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from services.database.prepared import Prepared
from services.eventbus.contract import event_subject, event_type
from services.eventbus.schema import EventTables
from services.runtime.clock import Clock
from services.runtime.ids import new_id

__all__ = ["Outbox"]

_WAKE_ARMED = "superapp.outbox.wake_armed"


class Outbox:
    """Writes outbox rows; wakes the relay when the writing transaction commits.

    `source` is the CloudEvents source, e.g. `superapp.identity`.
    """

    def __init__(self, tables: EventTables, source: str, clock: Clock) -> None:
        self._table = tables.outbox
        self._insert = tables.outbox.insert()
        self._prepared_insert = Prepared(
            self._insert,
            [c.key for c in tables.outbox.c if c.key not in {"seq", "published_time"}],
        )
        self._source = source
        self._clock = clock
        self.committed = asyncio.Event()
        """Set after a transaction that recorded events commits; an in-process relay
        waits on it."""
        self._wake_listeners: list[Callable[[], None]] = []

    async def record(self, session: AsyncSession, message: Message, aggregate_id: str) -> str:
        """Add `message` to the outbox inside `session`'s transaction; returns the event id.

        Nothing is published unless the transaction commits; a rollback discards it.
        """
        row = self._row(message, aggregate_id)
        await session.execute(self._insert, row)
        if not session.info.get(_WAKE_ARMED):
            session.info[_WAKE_ARMED] = True
            sa_event.listen(session.sync_session, "after_commit", self._wake, once=True)
        return str(row["event_id"])

    def record_sync(self, connection: Connection, message: Message, aggregate_id: str) -> str:
        """`record` for synchronous write paths (`Database.sync_write`, `BatchWriter`).

        The caller calls `wake()` once the transaction has committed.
        """
        row = self._row(message, aggregate_id)
        self._prepared_insert.execute(connection, row)
        return str(row["event_id"])

    def wake(self) -> None:
        """Tell the relay that events were committed."""
        self.committed.set()
        for listener in self._wake_listeners:
            listener()

    def on_wake(self, listener: Callable[[], None]) -> None:
        """Also call `listener` on every wake-up (a relay in another process)."""
        self._wake_listeners.append(listener)

    def _row(self, message: Message, aggregate_id: str) -> dict[str, Any]:
        # The trace context current while recording: the consumer's span continues it.
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return {
            "event_id": new_id(),
            "subject": event_subject(message),
            "event_type": event_type(message),
            "source": self._source,
            "aggregate_id": aggregate_id,
            "occur_time": self._clock.now(),
            "trace": carrier,
            "payload": message.SerializeToString(),
        }

    def _wake(self, _session: Any) -> None:
        self.wake()
