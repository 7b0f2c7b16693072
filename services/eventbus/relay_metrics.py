"""The outbox relay's metrics in its service's process, wherever the relay runs.

Published and failed events are counted as the relay reports them: directly by a relay
on the service's loop, through the status pipe by a relay in a child process (see
`relay_process`). The backlog is read from the outbox table every `interval_seconds`
by every replica, whichever relay holds the lease: it is the same shared state seen
from each, so rules take its `max`, never its sum. `superapp_outbox_relay_publishing`
says which replica holds the lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from services.eventbus.relay import Backlog
from services.runtime.metrics import Metrics
from services.runtime.tasks import stop_task

__all__ = ["RelayMetrics"]

_log = logging.getLogger(__name__)


class RelayMetrics:
    """Families of one service's relay: counts, lease, and the backlog it samples."""

    def __init__(self, metrics: Metrics, *, stream: str, interval_seconds: float = 5.0) -> None:
        self._published = metrics.counter(
            "superapp_events_published_total",
            "Events acknowledged by JetStream, published by this replica's relay.",
            ("stream",),
        ).labels(stream)
        self._failures = metrics.counter(
            "superapp_event_publish_failures_total",
            "Events whose publication failed (NATS away, no acknowledgement); each is retried.",
            ("stream",),
        ).labels(stream)
        self._backlog = metrics.gauge(
            "superapp_outbox_backlog_events",
            "Events recorded in the outbox and not yet acknowledged by JetStream "
            "(shared state: every replica reports the same; aggregate with max).",
        )
        self._oldest = metrics.gauge(
            "superapp_outbox_oldest_event_age_seconds",
            "Age of the oldest event waiting in the outbox, 0 when none waits "
            "(shared state: aggregate with max).",
        )
        self._publishing = metrics.gauge(
            "superapp_outbox_relay_publishing",
            "1 on the replica whose relay holds the outbox lease and publishes, else 0.",
        )
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def counted(self, published: int, failed: int) -> None:
        """A relay's report: events published and failed since its last one."""
        if published:
            self._published.inc(published)
        if failed:
            self._failures.inc(failed)

    def start(
        self, *, backlog: Callable[[], Awaitable[Backlog]], publishing: Callable[[], bool]
    ) -> None:
        """Sample `backlog()` every interval; report `publishing()` at each scrape."""
        self._publishing.set_function(lambda: 1.0 if publishing() else 0.0)
        self._task = asyncio.create_task(self._sample(backlog), name="outbox-backlog-metrics")

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            await stop_task(self._task, within=1.0)
            self._task = None

    async def _sample(self, backlog: Callable[[], Awaitable[Backlog]]) -> None:
        while True:
            try:
                current = await backlog()
            except Exception as error:  # the database away: the last value stays
                _log.debug("cannot read the outbox backlog: %s", error)
            else:
                self._backlog.set(current.count)
                self._oldest.set(current.oldest_age_seconds)
            await asyncio.sleep(self._interval)
