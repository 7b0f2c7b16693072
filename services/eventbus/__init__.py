"""The governance bus: transactional outbox → JetStream → idempotent inbox consumers.

The names below load on first use (PEP 562), so the outbox relay's child process
imports only what relaying needs (see `services.eventbus.relay_child`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.eventbus.connection import NatsLink
    from services.eventbus.consumer import EventConsumer, Handler
    from services.eventbus.contract import StreamSpec, event_subject, event_type, stream_of
    from services.eventbus.envelope import Envelope
    from services.eventbus.outbox import Outbox
    from services.eventbus.relay import Backlog, OutboxRelay
    from services.eventbus.schema import EventTables, event_tables
    from services.eventbus.streams import ensure_stream
    from services.eventbus.wiring import ServiceEventBus

__all__ = [
    "Backlog",
    "Envelope",
    "EventConsumer",
    "EventTables",
    "Handler",
    "NatsLink",
    "Outbox",
    "OutboxRelay",
    "ServiceEventBus",
    "StreamSpec",
    "ensure_stream",
    "event_subject",
    "event_tables",
    "event_type",
    "stream_of",
]

_HOMES = {
    "Backlog": "relay",
    "Envelope": "envelope",
    "EventConsumer": "consumer",
    "EventTables": "schema",
    "Handler": "consumer",
    "NatsLink": "connection",
    "Outbox": "outbox",
    "OutboxRelay": "relay",
    "ServiceEventBus": "wiring",
    "StreamSpec": "contract",
    "ensure_stream": "streams",
    "event_subject": "contract",
    "event_tables": "schema",
    "event_type": "contract",
    "stream_of": "contract",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
