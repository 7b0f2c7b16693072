"""CloudEvents 1.0 in binary mode over NATS headers; the body is the protobuf message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["CONTENT_TYPE", "Envelope", "MalformedEnvelope"]

CONTENT_TYPE = "application/protobuf"
_MSG_ID = "Nats-Msg-Id"


class MalformedEnvelope(ValueError):
    """A message lacks a required CloudEvents header or carries an unusable one."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """The attributes of one event, as carried in the message headers."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime
    trace: Mapping[str, str]
    """W3C `traceparent` / `tracestate` of the request that caused the event."""

    def headers(self) -> dict[str, str]:
        """NATS headers for this event; `Nats-Msg-Id` lets JetStream drop duplicates."""
        return {
            "ce-specversion": "1.0",
            "ce-id": self.id,
            "ce-type": self.type,
            "ce-source": self.source,
            "ce-subject": self.subject,
            "ce-time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "content-type": CONTENT_TYPE,
            _MSG_ID: self.id,
            **self.trace,
        }

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | None) -> Envelope:
        """Read an envelope back; MalformedEnvelope when something required is off."""
        found = dict(headers or {})
        missing = [
            name
            for name in ("ce-specversion", "ce-id", "ce-type", "ce-source", "ce-time")
            if not found.get(name)
        ]
        if missing:
            raise MalformedEnvelope(f"missing headers: {', '.join(missing)}")
        if found["ce-specversion"] != "1.0":
            raise MalformedEnvelope(f"unsupported ce-specversion {found['ce-specversion']}")
        if found.get("content-type", CONTENT_TYPE) != CONTENT_TYPE:
            raise MalformedEnvelope(f"unsupported content-type {found['content-type']}")
        try:
            time = datetime.fromisoformat(found["ce-time"].replace("Z", "+00:00"))
        except ValueError as error:
            raise MalformedEnvelope(f"bad ce-time {found['ce-time']!r}") from error
        return cls(
            id=found["ce-id"],
            type=found["ce-type"],
            source=found["ce-source"],
            subject=found.get("ce-subject", ""),
            time=time,
            trace={k: v for k, v in found.items() if k in ("traceparent", "tracestate")},
        )
