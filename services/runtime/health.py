"""grpc.health.v1 that tells the truth: NOT_SERVING until ready, while the database is
unreachable, and from the moment a shutdown starts.

"Ready" can wait for more than the database: a service whose events would not flow yet
(its outbox relay not connected, its consumer not bound) reports NOT_SERVING until they
do, so that whoever waits for SERVING (the local stack, a Kubernetes probe) never sends
it a user whose sign-up would then wait seconds for its consequences.

Liveness is another question: the health name `liveness` reports SERVING from start-up
until the drain, whatever the dependencies, so that a Kubernetes liveness probe restarts
only a process that no longer answers, never one whose database is briefly away (that
one leaves the rotation by readiness, the overall "" status, and returns by itself).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from grpc_health.v1 import health, health_pb2

from services.runtime.tasks import stop_task

__all__ = ["LIVENESS", "HealthReporter"]

_log = logging.getLogger(__name__)
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
LIVENESS = "liveness"
"""The health name a liveness probe asks: SERVING while the process runs, until it drains."""


class HealthReporter:
    """Owns the health servicer and a background probe that flips the reported status.

    `service_names` are the fully-qualified gRPC services; the overall status ("")
    follows them. `ready_when`, if given, completes once the service's start-up
    dependencies are in place; until then the status stays NOT_SERVING, and the probe
    runs the moment it completes.
    """

    def __init__(
        self,
        service_names: Sequence[str],
        probe: Callable[[], Awaitable[None]],
        interval_seconds: float,
        ready_when: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.servicer = health.aio.HealthServicer()
        self._names = ["", *service_names]
        self._probe = probe
        self._interval = interval_seconds
        self._ready_when = ready_when
        self._task: asyncio.Task[None] | None = None
        self._serving: bool | None = None
        self._slow = 0
        """Probes in a row that ran past their bound."""

    async def start(self) -> None:
        """Report NOT_SERVING, probe once (if nothing else must be ready first), then
        keep probing in the background."""
        await self.servicer.set(LIVENESS, _SERVING)
        await self._report(serving=False)
        if self._ready_when is None:
            await self._check()
        self._task = asyncio.create_task(self._watch(), name="health-probe")

    async def drain(self) -> None:
        """Report NOT_SERVING for good: the server is shutting down."""
        # First, so that nothing below can delay it; the servicer ignores any status
        # the prober still reports afterwards.
        await self.servicer.enter_graceful_shutdown()
        if self._task is not None:
            await stop_task(self._task, within=2.0)
            self._task = None

    async def _watch(self) -> None:
        if self._ready_when is not None:
            await self._ready_when()
            await self._check()
        while True:
            await asyncio.sleep(self._interval)
            await self._check()

    async def _check(self) -> None:
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can lose the cancellation
            # of a drain that lands as the probe answers (see services.runtime.tasks).
            async with asyncio.timeout(max(1.0, self._interval)):
                await self._probe()
        except TimeoutError:
            # Slow is not down: on a loaded machine one probe of a healthy database took
            # over its bound, and NOT_SERVING took the replica out of every client's
            # rotation. A second slow probe in a row counts; an error counts at once.
            self._slow += 1
            if self._serving and self._slow < 2:
                _log.info("health probe slow; still SERVING until the next one")
                return
            if self._serving is not False:
                _log.warning("health probe timed out twice, reporting NOT_SERVING")
            await self._report(serving=False)
        except Exception as error:  # any other failure means not ready, whatever its type
            if self._serving is not False:
                _log.warning(
                    "health probe failed, reporting NOT_SERVING: %s: %s",
                    type(error).__name__,
                    error,
                )
            await self._report(serving=False)
        else:
            self._slow = 0
            if self._serving is False:
                _log.info("health probe passed, reporting SERVING")
            await self._report(serving=True)

    async def _report(self, *, serving: bool) -> None:
        if serving == self._serving:
            return
        self._serving = serving
        for name in self._names:
            await self.servicer.set(name, _SERVING if serving else _NOT_SERVING)
