"""Stopping background tasks within a bound, whatever the code inside them does.

`task.cancel()` followed by `await task` can wait forever: code on the way may swallow
the cancellation and carry on. On Python 3.11, `asyncio.wait_for` returns its result
and drops a cancellation that arrives as the awaited thing completes (CPython
gh-86296), and nats-py's `next_msg` turns a cancellation into `ConnectionClosedError`
once the connection is closing. A service asked to stop must stop, so the shutdown
paths of the services wait on their tasks through these two functions instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["finish_within", "stop_task"]

_log = logging.getLogger(__name__)
# How long a cancelled task may take before it is asked again: long enough for a
# cleanup that awaits a round trip, short enough that a swallowed cancel costs little.
_CANCEL_AGAIN_SECONDS = 0.1


async def stop_task(task: asyncio.Task[Any], *, within: float) -> bool:
    """Cancel `task` and wait up to `within` seconds for it to end; True if it did.

    The cancellation is repeated while the task runs on, so one swallowed cancel does
    not keep it alive. The caller's own cancellation still propagates: the task's
    outcome is observed with `asyncio.wait`, which never raises it. A task that
    outlives `within` is logged and abandoned.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not task.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            _log.error("task %s did not stop within %.1fs; abandoning it", task.get_name(), within)
            _report_when_done(task)
            return False
        task.cancel()
        await asyncio.wait({task}, timeout=min(_CANCEL_AGAIN_SECONDS, remaining))
    if not task.cancelled() and task.exception() is not None:
        _log.warning("task %s had failed: %r", task.get_name(), task.exception())
    return True


def _report_when_done(task: asyncio.Future[Any]) -> None:
    """Log how an abandoned task ends, so its failure is neither lost nor reported by
    asyncio as an exception never retrieved."""

    def report(ended: asyncio.Future[Any]) -> None:
        if not ended.cancelled() and ended.exception() is not None:
            _log.error("abandoned task failed later", exc_info=ended.exception())

    task.add_done_callback(report)


async def finish_within(work: Callable[[], Awaitable[Any]], *, seconds: float, name: str) -> bool:
    """Run `work()` to its end, or stop it after `seconds`; True if it finished in time.

    Its exception, if any, is logged rather than raised (also one raised by the call
    itself): this is for releasing resources one after another, where one failure must
    not leave the rest held.
    """
    try:
        task = asyncio.ensure_future(work())
    except Exception:
        _log.exception("%s failed", name)
        return False
    if isinstance(task, asyncio.Task):
        task.set_name(name)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        _report_when_done(task)
        raise
    if not done:
        _log.error("%s did not finish within %.1fs; cancelling it", name, seconds)
        await stop_task(task, within=1.0)
        return False
    if task.cancelled():
        _log.error("%s was cancelled", name)
        return False
    if task.exception() is not None:
        _log.error("%s failed", name, exc_info=task.exception())
        return False
    return True
