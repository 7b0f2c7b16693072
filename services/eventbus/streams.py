"""Create or update JetStream streams idempotently at start-up."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from services.eventbus.contract import StreamSpec

__all__ = ["ensure_stream"]

_DAY = 24 * 3600.0


async def ensure_stream(
    jetstream: JetStreamContext,
    spec: StreamSpec,
    *,
    max_age_seconds: float = 7 * _DAY,
    duplicate_window_seconds: float = 120.0,
    replicas: int = 1,
) -> None:
    """Make `spec` exist with file storage, bounded retention and a duplicate window.

    The duplicate window is how long JetStream remembers `Nats-Msg-Id`s: a relay that
    re-publishes after a lost acknowledgement within it creates no second message.
    """
    config = StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_age=max_age_seconds,
        duplicate_window=duplicate_window_seconds,
        num_replicas=replicas,
    )
    try:
        await jetstream.stream_info(spec.name)
    except NotFoundError:
        await jetstream.add_stream(config)
    else:
        await jetstream.update_stream(config)
