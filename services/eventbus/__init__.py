"""The governance bus: transactional outbox → JetStream → idempotent inbox consumers."""

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
