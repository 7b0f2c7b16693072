"""Start, run and stop a grpc.aio service: handler guards, health, reflection, shutdown.

Each service's `server.py` builds its own parts (database, domain, servicer) and hands
them to `start_grpc_service`; its `main()` calls `run_service`, which owns the process:
settings, logging, signals and exit codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider

from services.runtime.contract_rules import ContractGuard, ContractRules, RequestChecks
from services.runtime.guarded_server import GuardedServer, HandlerGuard
from services.runtime.health import HealthReporter
from services.runtime.heap import freeze_start_up_heap
from services.runtime.logs import configure_logging
from services.runtime.loop_lag import LoopLag
from services.runtime.metrics import Metrics
from services.runtime.ports import port_in_use
from services.runtime.reflection import enable_reflection
from services.runtime.rich_status import ErrorGuard
from services.runtime.rpc_metrics import RpcMetrics
from services.runtime.settings import ConfigurationError, ServiceSettings, load_settings
from services.runtime.tasks import finish_within
from services.runtime.telemetry import server_tracing_interceptor
from services.runtime.tracing import exports_spans, tracer_provider_from_env

__all__ = [
    "HANDOVER_SECONDS",
    "GrpcService",
    "ServiceSpec",
    "StartupError",
    "run_service",
    "start_grpc_service",
]

_log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]
_CLOSE_TIMEOUT_SECONDS = 5.0
HANDOVER_SECONDS = 1.0
"""How long a stopping server keeps taking calls after it reports NOT_SERVING (at most
half its grace): clients learn it over their health watch a moment later, and a call
they send meanwhile to a server that has stopped taking calls is CANCELLED (gRPC cancels
what it has not handed to the application yet). Seen under load without it: one call
of forty failed while a replica drained."""
_Settings = TypeVar("_Settings", bound=ServiceSettings)


class StartupError(Exception):
    """The service cannot start; the message says which setting or dependency is at fault."""


@dataclass(frozen=True)
class ServiceSpec:
    """What a service contributes to the shared server."""

    domain: str
    """`ErrorInfo.domain`, e.g. `wallet.superapp`."""
    service_names: Sequence[str]
    """Fully-qualified gRPC service names, for health and reflection."""
    register: Callable[[grpc.aio.Server], None]
    """Adds the service's servicers to the server."""
    probe: Callable[[], Awaitable[None]]
    """Raises when a dependency the service cannot work without is unreachable."""
    ready_when: Callable[[], Awaitable[None]] | None = None
    """Completes once the service is ready beyond its probe (its events flow); health
    reports NOT_SERVING until then."""
    guards: Sequence[HandlerGuard] = ()
    """Service-specific handler guards (authentication), run inside error mapping."""
    request_checks: Sequence[RequestChecks] = ()
    """What the service's RPCs check of a request beyond its contract rules."""
    closers: Sequence[Closer] = ()
    """Released in reverse order after the server has stopped."""
    metrics: Metrics | None = None
    """The process's metrics (`Foundation.metrics`), served on `<PREFIX>_METRICS_PORT`
    if that is set; a service built without one gets its own."""
    max_receive_bytes: int | None = None
    """The largest request message the server accepts; gRPC's 4 MiB when None. A
    service whose contract takes larger messages (miniapps' bundles) raises it, and
    only that service: a bigger limit is memory an attacker may make it hold."""


@dataclass
class GrpcService:
    """A started service: its server, bound port and what must be released on stop."""

    server: grpc.aio.Server
    port: int
    health: HealthReporter
    metrics: Metrics
    closers: list[Closer] = field(default_factory=list)
    release_seconds: float = _CLOSE_TIMEOUT_SECONDS
    """The bound on each step of `stop` after the grace period."""

    async def stop(self, grace_seconds: float) -> None:
        """Report NOT_SERVING, refuse new calls, let in-flight ones finish, release.

        Each release is bounded: a process asked to stop must stop, even when a
        dependency (NATS, the database) hangs instead of answering.
        """
        bound = self.release_seconds
        await finish_within(self.health.drain, seconds=bound, name="health drain")
        await asyncio.sleep(min(HANDOVER_SECONDS, grace_seconds / 2))
        await finish_within(
            lambda: self.server.stop(grace_seconds),
            seconds=grace_seconds + bound,
            name="gRPC server stop",
        )
        for close in reversed(self.closers):
            # finish_within logs a failure or an overrun and goes on releasing the rest.
            name = f"releasing {getattr(close, '__qualname__', close)}"
            await finish_within(close, seconds=bound, name=name)


# gRPC core queues calls the application has not picked up yet and, past 1,000 of
# them, cancels the excess with a bare CANCELLED (no details, which clients do not
# retry): measured here, 57 of 1,500 simultaneous calls to a bare echo server. It also
# cancels, just as bare, a call that waited 30 s in that queue: seen here when a
# process starved of CPU (two busy loops beside the test suite) had 1,500 transfers
# queued. Bursts queue instead, however long, and are bounded by each caller's deadline.
_BURST_OPTIONS = (
    ("grpc.server.max_pending_requests", 20_000),
    ("grpc.server.max_pending_requests_hard_limit", 20_000),
    ("grpc.server_max_unrequested_time_in_server", 24 * 3600),
)
# Connections are recycled every few minutes (the GOAWAY lets in-flight calls finish):
# clients then resolve their target again, so replicas added since (a scale-up, a
# restarted pod) get their share of the calls instead of none until a client restarts.
_REBALANCE_OPTIONS = (
    ("grpc.max_connection_age_ms", 5 * 60 * 1000),
    ("grpc.max_connection_age_grace_ms", 60 * 1000),
)


def _receive_limit(max_bytes: int | None) -> list[tuple[str, int]]:
    return [] if max_bytes is None else [("grpc.max_receive_message_length", max_bytes)]


async def start_grpc_service(
    spec: ServiceSpec,
    settings: ServiceSettings,
    *,
    env_prefix: str,
    tracer_provider: TracerProvider,
) -> GrpcService:
    """Build and start the server for `spec`; the returned port is the one bound."""
    tracing = exports_spans(tracer_provider)
    metrics = spec.metrics or Metrics(spec.domain.partition(".")[0])
    # OpenTelemetry's interceptor is the only per-call one, and only when spans are
    # exported; our own concerns wrap each handler once, at registration. RED metrics
    # outermost: they count the status a call ends with, after every mapping. The
    # contract's request rules innermost: a caller who may not call learns nothing
    # about what the request would have needed.
    server = GuardedServer(
        grpc.aio.server(
            interceptors=[server_tracing_interceptor(tracer_provider)] if tracing else [],
            options=[
                ("grpc.so_reuseport", 0),
                *_BURST_OPTIONS,
                *_REBALANCE_OPTIONS,
                *_receive_limit(spec.max_receive_bytes),
            ],
        ),
        [
            RpcMetrics(metrics),
            ErrorGuard(spec.domain, carry_trace_context=not tracing),
            *spec.guards,
            ContractGuard(ContractRules(), spec.request_checks),
        ],
    )
    spec.register(server)
    health = HealthReporter(
        spec.service_names, spec.probe, settings.health_probe_seconds, spec.ready_when
    )
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    enable_reflection(
        server,
        [*spec.service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name],
    )
    try:
        port = await _listen(server, metrics, settings, env_prefix)
    except BaseException:
        # What the service built for the server (database, bus, tasks) is released here,
        # once for every service, so a start that fails leaks nothing.
        for close in reversed(spec.closers):
            await finish_within(close, seconds=_CLOSE_TIMEOUT_SECONDS, name="releasing")
        raise
    await health.start()
    loop_lag = LoopLag(metrics)
    loop_lag.start()
    # Metrics are served to the end: released last, after the other closers.
    return GrpcService(server, port, health, metrics, [metrics.close, *spec.closers, loop_lag.stop])


async def _listen(
    server: grpc.aio.Server, metrics: Metrics, settings: ServiceSettings, env_prefix: str
) -> int:
    """Bind the gRPC and metrics ports and start serving; the gRPC port bound."""
    address = f"{settings.host}:{settings.port}"
    taken = StartupError(f"{env_prefix}PORT: cannot listen on {address} (in use or not permitted)")
    # Probe first: gRPC core would also log its own multi-line complaint to stderr.
    if settings.port and port_in_use(settings.host, settings.port):
        raise taken
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as error:
        raise taken from error
    if settings.metrics_port is not None:
        try:
            metrics.serve(settings.host, settings.metrics_port)
        except OSError as error:
            raise StartupError(
                f"{env_prefix}METRICS_PORT: cannot listen on "
                f"{settings.host}:{settings.metrics_port} ({error.strerror or error})"
            ) from error
    try:
        await server.start()
    except BaseException:
        await metrics.close()
        raise
    return port


async def _serve(
    name: str,
    start: Callable[[TracerProvider], Awaitable[GrpcService]],
    grace_seconds: float,
) -> None:
    provider = tracer_provider_from_env(name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    service = await start(provider)
    frozen = freeze_start_up_heap()
    _log.info(
        "%s listening on port %d",
        name,
        service.port,
        extra={"port": service.port, "frozen_objects": frozen},
    )
    try:
        await stop.wait()
        _log.info("%s draining (grace %.1fs)", name, grace_seconds)
    finally:
        await service.stop(grace_seconds)
        provider.shutdown()
    _log.info("%s stopped", name)


def run_service(
    name: str,
    settings_class: type[_Settings],
    start: Callable[[_Settings, TracerProvider], Awaitable[GrpcService]],
) -> None:
    """The whole life of a service process; exits non-zero with one clear line on failure."""
    try:
        settings = load_settings(settings_class)
    except ConfigurationError as error:
        print(f"{name}: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(name, settings.log_level)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    try:
        asyncio.run(
            _serve(
                name, lambda provider: start(settings, provider), settings.shutdown_grace_seconds
            )
        )
    except StartupError as error:
        print(f"{name}: cannot start: {error}", file=sys.stderr)
        raise SystemExit(1) from None
