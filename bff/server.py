"""Serving the BFF with uvicorn (httptools, uvloop), in its own process or in a test.

`BffServer.start()` binds (port 0 picks one) and returns once the app's lifespan has
started; `stop()` drains. Each process serves its own metrics on `BFF_METRICS_PORT`.
`main()` owns the process: settings, logging, signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from starlette.types import ASGIApp

from bff.app import app_metrics, create_app
from bff.config import BffSettings
from services.runtime.heap import freeze_start_up_heap
from services.runtime.logs import configure_logging
from services.runtime.metrics import Metrics
from services.runtime.ports import port_in_use
from services.runtime.settings import ConfigurationError, load_settings
from services.runtime.tasks import stop_task
from services.runtime.tracing import tracer_provider_from_env

__all__ = ["BffServer", "main", "run_uvicorn", "uvicorn_config"]

_log = logging.getLogger(__name__)
# After the grace: how long the app's own shutdown (closing its channels) may take.
_RELEASE_SECONDS = 5.0


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the owner of the loop decides."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_config(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    forwarded_allow_ips: str = "",
    graceful_shutdown_seconds: float = 10.0,
    lifespan: Literal["on", "off"] = "on",
) -> uvicorn.Config:
    """How the BFF is served (the bench serves its bare ASGI ceiling the same way)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http="httptools",
        lifespan=lifespan,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=bool(forwarded_allow_ips),
        forwarded_allow_ips=forwarded_allow_ips or None,
        timeout_graceful_shutdown=max(1, round(graceful_shutdown_seconds)),
    )


class BffServer:
    """The app behind uvicorn on `settings.host:settings.port`, and its metrics on
    `settings.metrics_port` if that is set."""

    def __init__(
        self,
        app: ASGIApp,
        settings: BffSettings,
        *,
        release_seconds: float = _RELEASE_SECONDS,
        metrics: Metrics | None = None,
    ) -> None:
        """`metrics`: those of the process; by default the app's (`app_metrics`), or
        new ones for an app that is not the BFF's (the bench's bare app)."""
        if metrics is None:
            metrics = app_metrics(app) if isinstance(app, FastAPI) else Metrics("bff")
        self.metrics = metrics
        self._host = settings.host
        self._metrics_port = settings.metrics_port
        config = uvicorn_config(
            app,
            host=settings.host,
            port=settings.port,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            graceful_shutdown_seconds=settings.shutdown_grace_seconds,
        )
        self._server = _Uvicorn(config)
        self._task: asyncio.Task[None] | None = None
        self._stop_within = (config.timeout_graceful_shutdown or 0) + release_seconds

    @property
    def port(self) -> int:
        """The bound port (after `start`)."""
        port: int = self._server.servers[0].sockets[0].getsockname()[1]
        return port

    async def start(self) -> int:
        """Serve in the background; the bound port once ready. Raises if it cannot start."""
        if self._metrics_port is not None:
            try:
                self.metrics.serve(self._host, self._metrics_port)
            except OSError as error:
                raise RuntimeError(
                    f"BFF_METRICS_PORT: cannot listen on {self._host}:{self._metrics_port} "
                    f"({error.strerror or error})"
                ) from error
        self._task = asyncio.create_task(self._server.serve(), name="bff-http")
        while not self._server.started:
            if self._task.done():
                await self.metrics.close()
                with contextlib.suppress(SystemExit):  # uvicorn: the lifespan failed
                    self._task.result()
                raise RuntimeError("the BFF did not start; see the log")
            await asyncio.sleep(0.01)
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (within the grace), stop the app.

        Bounded: a process asked to stop must stop, so an app whose shutdown hangs
        (an upstream channel that never closes) is cancelled after the grace plus
        `release_seconds`, and that is logged.
        """
        if self._task is None:
            return
        task, self._task = self._task, None
        self._server.should_exit = True
        try:
            done, _ = await asyncio.wait({task}, timeout=self._stop_within)
            if not done:
                _log.error("the BFF did not stop within %.1fs; cancelling it", self._stop_within)
                await stop_task(task, within=1.0)
            elif not task.cancelled():
                task.result()  # a failure to serve is the caller's to see, as before
        finally:
            await self.metrics.close()  # scraped to the end of the drain

    async def wait(self) -> None:
        """Until the server stops (by `stop()` or a fatal error)."""
        if self._task is not None:
            await asyncio.shield(self._task)


def run_uvicorn(serve: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `serve` on uvloop where available, as every service does."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(serve())


async def _serve(settings: BffSettings, tracer_provider: TracerProvider) -> None:
    server = BffServer(create_app(settings, tracer_provider=tracer_provider), settings)
    port = await server.start()
    frozen = freeze_start_up_heap()
    _log.info("bff listening on port %d", port, extra={"port": port, "frozen_objects": frozen})
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    waiting = asyncio.create_task(server.wait())
    stop_asked = asyncio.create_task(stopping.wait())
    await asyncio.wait({waiting, stop_asked}, return_when=asyncio.FIRST_COMPLETED)
    stop_asked.cancel()
    _log.info("bff draining (grace %.1fs)", settings.shutdown_grace_seconds)
    await server.stop()
    _log.info("bff stopped")


def main() -> None:
    """Run the BFF until SIGTERM/SIGINT."""
    try:
        settings = load_settings(BffSettings)
    except ConfigurationError as error:
        print(f"bff: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("bff", settings.log_level)
    if settings.port and port_in_use(settings.host, settings.port):
        print(
            f"bff: cannot start: BFF_PORT: cannot listen on {settings.host}:{settings.port} "
            "(in use or not permitted)",
            file=sys.stderr,
        )
        raise SystemExit(1)
    provider = tracer_provider_from_env("bff")
    try:
        run_uvicorn(lambda: _serve(settings, provider))
    except RuntimeError as error:
        print(f"bff: cannot start: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        provider.shutdown()
