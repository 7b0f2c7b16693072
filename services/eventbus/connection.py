"""One NATS connection per service process, which keeps trying until NATS is there.

A service must start and serve RPCs while NATS is away (the outbox buffers), so the
first connection is made in the background and retried, and later reconnects are left
to nats-py, which retries forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from services.runtime.tasks import finish_within, stop_task

__all__ = ["NatsLink"]

_log = logging.getLogger(__name__)


class NatsLink:
    """A NATS client connected in the background; `generation` counts (re)connections."""

    def __init__(self, url: str, name: str, *, retry_seconds: float = 0.5) -> None:
        self._url = url
        self._name = name
        self._retry = retry_seconds
        self._client: Client | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.generation = 0
        self._closing = False
        self._listeners: list[Callable[[], Awaitable[None]]] = []

    @property
    def client(self) -> Client:
        """The connected client; only valid after `wait()`."""
        if self._client is None:
            raise RuntimeError("NATS is not connected yet")
        return self._client

    @property
    def jetstream(self) -> JetStreamContext:
        """A JetStream context on the connected client."""
        return self.client.jetstream(publish_async_max_pending=4000)

    @property
    def is_connected(self) -> bool:
        """Whether the client is connected right now."""
        return self._client is not None and self._client.is_connected

    def on_reconnect(self, listener: Callable[[], Awaitable[None]]) -> None:
        """Call `listener` after every reconnection (pull subscriptions re-issue then)."""
        self._listeners.append(listener)

    def start(self) -> None:
        """Begin connecting in the background."""
        self._task = asyncio.create_task(self._connect(), name=f"nats-connect-{self._name}")

    async def wait(self) -> Client:
        """Wait for the first successful connection."""
        await self._connected.wait()
        return self.client

    async def _connect(self) -> None:
        attempt = 0
        while True:
            try:
                self._client = await nats.connect(
                    # A cluster is named by its nodes' URLs, comma-separated.
                    [url.strip() for url in self._url.split(",")],
                    name=self._name,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=self._retry,
                    connect_timeout=2,
                    reconnected_cb=self._reconnected,
                    disconnected_cb=self._disconnected,
                    error_cb=self._error,
                )
            except Exception as error:  # any failure to connect: try again, NATS may come
                attempt += 1
                if attempt == 1 or attempt % 20 == 0:
                    _log.warning("NATS at %s unreachable (%s); retrying", self._url, error)
                await asyncio.sleep(min(self._retry * attempt, 5.0))
            else:
                if self._closing:
                    # close() gave up on this loop (it swallowed a cancellation) and has
                    # returned: nobody would ever close this client.
                    await self._client.close()
                    return
                self.generation += 1
                self._connected.set()
                _log.info("connected to NATS at %s", self._url)
                return

    async def _reconnected(self) -> None:
        self.generation += 1
        _log.info("reconnected to NATS")
        for listener in self._listeners:
            await listener()

    async def _disconnected(self) -> None:
        if not self._closing:  # closing disconnects on purpose; nothing to warn about
            _log.warning("disconnected from NATS; the outbox buffers until it is back")

    async def _error(self, error: Exception) -> None:
        _log.debug("NATS client error: %s", error)

    async def close(self) -> None:
        """Stop connecting, or drain and close the connection."""
        self._closing = True
        if self._task is not None:
            # nats-py's connect loop swallows a cancellation that arrives while it tidies
            # up a failed attempt and then retries forever; stop_task asks again.
            await stop_task(self._task, within=2.0)
        if self._client is not None and not self._client.is_closed:
            # Bounded: with NATS gone, closing must not wait on a dead connection.
            await finish_within(self._client.close, seconds=2.0, name="closing NATS")
