"""What the contracts say about events: subjects, types, and each publisher's stream."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message
from superapp.events.v1 import options_pb2

__all__ = ["DEADLETTER_STREAM", "StreamSpec", "event_subject", "event_type", "stream_of"]


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A JetStream stream owned by one publishing service."""

    name: str
    subjects: tuple[str, ...]


DEADLETTER_STREAM = StreamSpec("SUPERAPP_DEADLETTER", ("superapp.deadletter.>",))


def event_subject(message: type[Message] | Message) -> str:
    """The NATS subject declared by the event's `(superapp.events.v1.subject)` option."""
    subject: str = message.DESCRIPTOR.GetOptions().Extensions[options_pb2.subject]
    if not subject:
        raise ValueError(f"{message.DESCRIPTOR.full_name} declares no event subject")
    return subject


def event_type(message: type[Message] | Message) -> str:
    """The CloudEvents `type`: the message's full proto name."""
    return message.DESCRIPTOR.full_name


def stream_of(service: str) -> StreamSpec:
    """The stream a service publishes into: `SUPERAPP_<SERVICE>` over `superapp.<service>.>`."""
    return StreamSpec(f"SUPERAPP_{service.upper()}", (f"superapp.{service}.>",))
