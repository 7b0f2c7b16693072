"""The one-command local stack: a private NATS with JetStream and every service, supervised.

`scripts/stack` runs this module. It checks every port before starting anything, starts the
components, waits until each reports ready, prints the endpoints, and on Ctrl-C or SIGTERM
stops them in reverse order. A component that exits during start-up stops the stack with a
report naming it and quoting its last output; one that exits later is started again
while the others keep running (`scripts.supervisor`), and only one that keeps crashing
stops the stack.

Every process serves its Prometheus metrics on its own `<PREFIX>METRICS_PORT`; with
`--observability` a Prometheus scraping all of them, with the rules of
deploy/observability, runs in the stack too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import hashlib
import json
import os
import secrets
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TextIO

import grpc

from scripts.nats_process import ClusterNode, NatsStartError, nats_server_command
from scripts.prometheus_process import (
    PrometheusStartError,
    ScrapeTarget,
    prometheus_command,
    write_config,
)
from scripts.supervisor import Child, GaveUp, ReadyCheck, RestartPolicy, stop_children
from services.runtime.health_client import wait_serving
from services.runtime.ports import FreePorts, port_in_use

__all__ = [
    "COMPONENTS",
    "PROMETHEUS_DEFAULT_PORT",
    "READY_LINE",
    "SERVICE_CLIENTS",
    "Component",
    "Readiness",
    "StackConfig",
    "argument_parser",
    "http_ready_problem",
    "main",
    "service_client_environment",
]

ROOT = Path(__file__).resolve().parent.parent
READY_LINE = "ready; Ctrl-C to stop"
PROMETHEUS_DEFAULT_PORT = 7390
"""Where `--observability` serves Prometheus unless SUPERAPP_PROMETHEUS_PORT says."""
BUF_CURL = "npx buf curl --protocol grpc --http2-prior-knowledge"
"""How the banner and the README call a service by hand (buf comes from package.json)."""
# A failed connect puts a gRPC channel into exponential backoff (1 s, 1.6 s, …); a service
# that takes a few seconds to import would then be seen ready seconds late.
_PROBE_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]


class Readiness(enum.Enum):
    """How the launcher tells that a component is ready."""

    GRPC_HEALTH = "grpc.health.v1"
    HTTP_READYZ = "GET /readyz"


@dataclass(frozen=True)
class Component:
    """One process of the stack: `python -m <module>`, configured by `<env_prefix>*`."""

    name: str
    module: str
    env_prefix: str
    default_port: int
    readiness: Readiness
    default_metrics_port: int

    @property
    def port_variable(self) -> str:
        """The environment variable that sets its port, e.g. `WALLET_PORT`."""
        return f"{self.env_prefix}PORT"

    @property
    def metrics_port_variable(self) -> str:
        """The one that sets where it serves `/metrics`, e.g. `WALLET_METRICS_PORT`."""
        return f"{self.env_prefix}METRICS_PORT"


COMPONENTS: tuple[Component, ...] = (
    Component("identity", "services.identity", "IDENTITY_", 7101, Readiness.GRPC_HEALTH, 7301),
    Component("wallet", "services.wallet", "WALLET_", 7102, Readiness.GRPC_HEALTH, 7302),
    Component("catalogue", "services.catalogue", "CATALOGUE_", 7103, Readiness.GRPC_HEALTH, 7303),
    Component("orders", "services.orders", "ORDERS_", 7104, Readiness.GRPC_HEALTH, 7304),
    Component("miniapps", "services.miniapps", "MINIAPPS_", 7105, Readiness.GRPC_HEALTH, 7305),
    # Started last and stopped first: it is ready only once every service is.
    Component("bff", "bff", "BFF_", 7100, Readiness.HTTP_READYZ, 7300),
)


class StackError(Exception):
    """The stack cannot start or keep running; the message is the one line to show."""


class ConfigurationError(StackError):
    """A flag or environment variable is malformed."""


@dataclass(frozen=True)
class Endpoint:
    """Where one process of a component will listen."""

    component: Component
    host: str
    port: int
    name: str
    """The process's name in the stack's output: the component's, or `wallet-2` when it
    runs as several replicas."""
    metrics_port: int
    """Where it serves `/metrics`, on `host`."""

    @property
    def address(self) -> str:
        """host:port, as gRPC clients spell it."""
        return f"{self.host}:{self.port}"

    @property
    def metrics_address(self) -> str:
        """host:port of its `/metrics`, as a local scraper reaches it."""
        host = "127.0.0.1" if self.host in {"0.0.0.0", ""} else self.host  # noqa: S104
        return f"{host}:{self.metrics_port}"


class ServiceChild(NamedTuple):
    """A component's process and where it listens."""

    endpoint: Endpoint
    child: Child


@dataclass(frozen=True)
class StackConfig:
    """Everything the launcher decides before it starts a process."""

    data_dir: Path
    external_nats_url: str | None
    nats_ports: Sequence[int]
    """The client port of each NATS node the stack starts (one, or a cluster's)."""
    nats_cluster_ports: Sequence[int]
    """Each node's route port when the stack starts a cluster; empty for one node."""
    startup_timeout: float
    replicas: int
    endpoints: Sequence[Endpoint]
    prometheus_port: int | None = None
    """Where the stack's Prometheus listens (on 127.0.0.1); None: not started."""

    @classmethod
    def resolve(
        cls,
        args: argparse.Namespace,
        environ: Mapping[str, str],
        components: Sequence[Component] = COMPONENTS,
    ) -> StackConfig:
        """Combine flags, environment and defaults; ports set to 0 get a free one now."""
        data_dir = Path(args.data_dir or environ.get("SUPERAPP_DATA_DIR") or ROOT / ".data")
        nats_port = (
            _parse_port(str(args.nats_port), "--nats-port")
            if args.nats_port is not None
            else _port_from_env(environ, "SUPERAPP_NATS_PORT", 7222)
        )
        startup_timeout = (
            args.startup_timeout if args.startup_timeout is not None else 90.0 * args.replicas
        )
        if startup_timeout <= 0:
            raise ConfigurationError("--startup-timeout must be positive")
        if not 1 <= args.replicas <= 9:
            raise ConfigurationError("--replicas must be from 1 to 9")
        if args.nats_cluster not in (1, 3, 5):
            raise ConfigurationError("--nats-cluster must be 1, 3 or 5 (a JetStream quorum)")
        external = args.nats_url or environ.get("SUPERAPP_NATS_URL") or None
        if external is not None and args.nats_cluster != 1:
            raise ConfigurationError(
                "--nats-cluster starts a cluster; it cannot go with --nats-url"
            )
        if args.only is not None:
            components = _only(args.only, components)
        picker = FreePorts()
        cluster_ports = (
            [picker.pick() for _ in range(args.nats_cluster)] if args.nats_cluster > 1 else []
        )
        prometheus_port = None
        if args.observability:
            prometheus_port = _port_from_env(
                environ, "SUPERAPP_PROMETHEUS_PORT", PROMETHEUS_DEFAULT_PORT
            ) or picker.pick("127.0.0.1")
        config = cls(
            data_dir=data_dir.resolve(),
            external_nats_url=external,
            nats_ports=_replica_ports(nats_port, args.nats_cluster, "127.0.0.1", picker),
            nats_cluster_ports=cluster_ports,
            startup_timeout=startup_timeout,
            replicas=args.replicas,
            endpoints=[
                endpoint
                for component in components
                for endpoint in _endpoints(component, environ, args.replicas, picker)
            ],
            prometheus_port=prometheus_port,
        )
        config.check_databases(environ)
        return config

    @property
    def nats_url(self) -> str:
        """The URL the services connect to: every node's, comma-separated."""
        if self.external_nats_url is not None:
            return self.external_nats_url
        return ",".join(f"nats://127.0.0.1:{port}" for port in self.nats_ports)

    def check_databases(self, environ: Mapping[str, str]) -> None:
        """Several replicas need a database they can share: refuse SQLite for them."""
        if self.replicas == 1:
            return
        on_sqlite = sorted(
            {
                f"{e.component.env_prefix}DATABASE_URL"
                for e in self.endpoints
                if e.component.readiness is Readiness.GRPC_HEALTH
                and not environ.get(f"{e.component.env_prefix}DATABASE_URL", "").startswith(
                    "postgresql"
                )
            }
        )
        if on_sqlite:
            raise ConfigurationError(
                f"--replicas {self.replicas} needs PostgreSQL (SQLite is one file on one host "
                f"with one writer): set {', '.join(on_sqlite)} to postgresql+asyncpg://..."
            )

    def addresses(self, component: Component) -> str:
        """The gRPC target of every replica of `component`, as its callers' `*_ADDR`."""
        mine = [e.address for e in self.endpoints if e.component is component]
        # gRPC's address-list target: channels balance over every one of them.
        return mine[0] if len(mine) == 1 else "ipv4:" + ",".join(mine)


def _only(names: str, components: Sequence[Component]) -> list[Component]:
    """The components `--only` names (comma-separated), in the stack's start order."""
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    known = {component.name for component in components}
    if not wanted or wanted - known:
        raise ConfigurationError(
            f"--only takes components among {', '.join(sorted(known))} (got {names!r})"
        )
    return [component for component in components if component.name in wanted]


def _replica_ports(base: int, count: int, host: str, picker: FreePorts) -> list[int]:
    """Replica i listens on `base` + 10 i (7102, 7112, ...), or on free ports for base 0."""
    if base == 0:
        return [picker.pick(host) for _ in range(count)]
    return [base + 10 * index for index in range(count)]


def _endpoints(
    component: Component, environ: Mapping[str, str], replicas: int, picker: FreePorts
) -> list[Endpoint]:
    host = environ.get(f"{component.env_prefix}HOST") or "127.0.0.1"
    base = _port_from_env(environ, component.port_variable, component.default_port)
    ports = _replica_ports(base, replicas, host, picker)
    metrics_base = _port_from_env(
        environ, component.metrics_port_variable, component.default_metrics_port
    )
    metrics_ports = _replica_ports(metrics_base, replicas, host, picker)
    names = (
        [component.name]
        if replicas == 1
        else [f"{component.name}-{index + 1}" for index in range(replicas)]
    )
    return [
        Endpoint(component, host, port, name, metrics_port)
        for port, name, metrics_port in zip(ports, names, metrics_ports, strict=True)
    ]


def _parse_port(raw: str, source: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise ConfigurationError(f"{source} must be a port number (got {raw!r})") from None
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"{source} must be between 0 and 65535 (got {port})")
    return port


def _port_from_env(environ: Mapping[str, str], variable: str, default: int) -> int:
    raw = environ.get(variable, "").strip()
    return _parse_port(raw, variable) if raw else default


def check_ports(config: StackConfig) -> None:
    """Refuse to start when a configured port is in use or given to two components."""
    wanted: list[tuple[str, int, str]] = []
    if config.external_nats_url is None:
        nats = "SUPERAPP_NATS_PORT (or --nats-port)"
        wanted += [("127.0.0.1", port, nats) for port in config.nats_ports]
        wanted += [("127.0.0.1", port, "a NATS route port") for port in config.nats_cluster_ports]
    wanted += [(e.host, e.port, e.component.port_variable) for e in config.endpoints]
    wanted += [
        (e.host, e.metrics_port, e.component.metrics_port_variable) for e in config.endpoints
    ]
    if config.prometheus_port is not None:
        wanted.append(("127.0.0.1", config.prometheus_port, "SUPERAPP_PROMETHEUS_PORT"))
    claimed: dict[int, str] = {}
    for host, port, variable in wanted:
        if port in claimed:
            raise ConfigurationError(f"port {port} is set twice: {claimed[port]} and {variable}")
        claimed[port] = variable
        if port_in_use(host, port):
            raise StackError(
                f"port {port} is already in use; free it or set {variable} to another port"
            )


def _child_environment(
    environ: Mapping[str, str], endpoint: Endpoint, config: StackConfig
) -> dict[str, str]:
    prefix = endpoint.component.env_prefix
    env = dict(environ)
    # Every component learns where its peers' replicas listen (`WALLET_IDENTITY_ADDR`,
    # `BFF_CATALOGUE_ADDR`, ...), so moved ports still meet; explicit settings win.
    for peer in {e.component for e in config.endpoints}:
        if peer.readiness is Readiness.GRPC_HEALTH and peer is not endpoint.component:
            env.setdefault(f"{prefix}{peer.name.upper()}_ADDR", config.addresses(peer))
    env[f"{prefix}PORT"] = str(endpoint.port)
    env[f"{prefix}METRICS_PORT"] = str(endpoint.metrics_port)
    env[f"{prefix}DATA_DIR"] = str(config.data_dir)
    env[f"{prefix}NATS_URL"] = config.nats_url
    if config.nats_cluster_ports:
        # Every node keeps a copy of every stream: one node may die without loss.
        env[f"{prefix}NATS_STREAM_REPLICAS"] = str(len(config.nats_cluster_ports))
    if endpoint.component.readiness is Readiness.HTTP_READYZ:
        # Rate limits held in each process's memory are shared out between the replicas.
        env.setdefault(f"{prefix}REPLICAS", str(config.replicas))
    env["PYTHONUNBUFFERED"] = "1"
    return env


SERVICE_CLIENTS = ("orders", "miniapps", "bff")
"""The components that call other services with a token of their own (role `system`,
from identity's IssueServiceToken): orders for its saga and reconciler, miniapps for
payments and mini-app token introspection, the BFF for mini-app token introspection."""


def service_client_environment(data_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The secrets of a fresh clone, so it starts with no configuration, each made once
    and kept in `<data dir>/secrets/` (0600): every service client's secret
    (`<NAME>_CLIENT_SECRET`; identity is given only their SHA-256) and identity's
    key-encryption key. Explicit `<NAME>_CLIENT_SECRET` / IDENTITY_SERVICE_CLIENTS /
    IDENTITY_KEY_ENCRYPTION_KEYS win."""
    found: dict[str, str] = {}
    digests: dict[str, str] = {}
    for name in SERVICE_CLIENTS:
        variable = f"{name.upper()}_CLIENT_SECRET"
        secret = environ.get(variable) or _stored_secret(
            data_dir / "secrets" / f"{name}-client-secret"
        )
        found[variable] = secret
        digests[name] = hashlib.sha256(secret.encode()).hexdigest()
    # The base64url of 32 random bytes, as identity requires.
    kek = environ.get("IDENTITY_KEY_ENCRYPTION_KEYS") or _stored_secret(
        data_dir / "secrets" / "identity-key-encryption-key"
    )
    return {
        **found,
        "IDENTITY_SERVICE_CLIENTS": environ.get("IDENTITY_SERVICE_CLIENTS") or json.dumps(digests),
        "IDENTITY_KEY_ENCRYPTION_KEYS": kek,
    }


def _stored_secret(path: Path) -> str:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    secret = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    return secret


def _grpc_serving(address: str) -> ReadyCheck:
    async def check(seen: Callable[[str], None]) -> None:
        async with grpc.aio.insecure_channel(address, options=_PROBE_CHANNEL_OPTIONS) as channel:
            await wait_serving(channel, on_state=seen)

    return check


async def http_ready_problem(host: str, port: int, path: str) -> str | None:
    """None when GET `path` answers 200, else what went wrong."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError) as error:
        return f"connect failed: {error}"
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 1.0)
    except (OSError, TimeoutError) as error:
        return f"request failed: {error}"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    parts = status_line.decode(errors="replace").split()
    return None if len(parts) > 1 and parts[1] == "200" else " ".join(parts[1:]) or "no answer"


def _http_ready(host: str, port: int) -> ReadyCheck:
    return _http_ready_at(host, port, "/readyz")


def _http_ready_at(host: str, port: int, path: str) -> ReadyCheck:
    async def check(seen: Callable[[str], None]) -> None:
        while (problem := await http_ready_problem(host, port, path)) is not None:
            seen(f"GET {path}: {problem}")
            await asyncio.sleep(0.1)

    return check


def _port_listening(port: int) -> ReadyCheck:
    async def check(seen: Callable[[str], None]) -> None:
        while not port_in_use("127.0.0.1", port):
            seen("not listening yet")
            await asyncio.sleep(0.05)

    return check


def _endpoint_table(
    config: StackConfig,
    nats: Sequence[Child],
    services: Sequence[ServiceChild],
    prometheus: Child | None = None,
) -> str:
    logs = config.data_dir / "logs"
    rows: list[tuple[str, ...]] = [("", "endpoint", "pid", "notes")]
    if not nats:
        rows.append(("nats", config.nats_url, "-", "external, not started by the stack"))
    for node, port in zip(nats, config.nats_ports, strict=True):
        role = "JetStream cluster node" if len(nats) > 1 else "JetStream"
        rows.append(
            (
                node.name,
                f"nats://127.0.0.1:{port}",
                str(node.pid),
                f"{role}; log {logs / (node.name + '.log')}",
            )
        )
    examples: list[str] = []
    listed: set[Component] = set()
    for endpoint, child in services:
        address = endpoint.address
        readiness = endpoint.component.readiness.value
        first = endpoint.component not in listed  # one example per component
        listed.add(endpoint.component)
        metrics = f"metrics http://{endpoint.metrics_address}/metrics"
        if endpoint.component.readiness is Readiness.GRPC_HEALTH:
            rows.append(
                (child.name, f"grpc {address}", str(child.pid), f"ready by {readiness}; {metrics}")
            )
            if first:
                examples.append(f"{BUF_CURL} --list-methods http://{address}")
        else:
            rows.append(
                (
                    child.name,
                    f"http://{address}",
                    str(child.pid),
                    f"ready by {readiness}; {metrics}",
                )
            )
            if first:
                examples.append(f"curl http://{address}{readiness.removeprefix('GET ')}")
                examples.append(f"curl http://{address}/openapi.json")
    if prometheus is not None:
        url = f"http://127.0.0.1:{config.prometheus_port}"
        rows.append(
            (
                prometheus.name,
                url,
                str(prometheus.pid),
                f"scrapes every process every 5s; config {config.data_dir / 'prometheus'}",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = ["", f"superapp local stack; data in {config.data_dir}"]
    lines += [
        "  "
        + "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)), row[3]]
        )
        for row in rows
    ]
    lines += [
        "databases: SQLite <data>/<service>.db unless <PREFIX>DATABASE_URL is set",
        "metrics: every process serves Prometheus metrics on its <PREFIX>METRICS_PORT; "
        + (
            f"Prometheus shows its targets at http://127.0.0.1:{config.prometheus_port}/targets "
            "and the alerts of deploy/observability/rules at /alerts"
            if prometheus is not None
            else "--observability also starts Prometheus"
        ),
        "logs: every component's output goes to stderr, each line prefixed by its name",
        "a component that crashes is started again; the others keep running",
        "list the methods of each (reflection; the BFF: readiness and OpenAPI):",
        *(f"  {example}" for example in examples),
        READY_LINE,
    ]
    return "\n".join(lines)


def _nats_children(config: StackConfig, sink: TextIO, width: int) -> list[Child]:
    logs = config.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    clustered = len(config.nats_ports) > 1
    children = []
    for index, port in enumerate(config.nats_ports):
        name = f"nats-{index + 1}" if clustered else "nats-server"
        store = config.data_dir / ("nats" if not clustered else f"nats-{index + 1}")
        store.mkdir(parents=True, exist_ok=True)
        cluster = (
            ClusterNode(name, config.nats_cluster_ports[index], tuple(config.nats_cluster_ports))
            if clustered
            else None
        )
        try:
            argv = nats_server_command(port, store, logs / f"{name}.log", cluster)
        except NatsStartError as error:
            raise StackError(f"nats-server: {error}") from None
        children.append(
            Child(
                name=name,
                argv=argv,
                env=dict(os.environ),
                ready_check=_port_listening(port),
                sink=sink,
                width=width,
                cwd=ROOT,
                note=f"on nats://127.0.0.1:{port}",
            )
        )
    return children


def _prometheus_child(config: StackConfig, sink: TextIO, width: int) -> Child:
    """Prometheus on a configuration naming every process of this run."""
    assert config.prometheus_port is not None
    directory = config.data_dir / "prometheus"
    path = write_config(
        directory,
        [ScrapeTarget(e.component.name, e.name, e.metrics_address) for e in config.endpoints],
    )
    try:
        argv = prometheus_command(path, directory / "data", config.prometheus_port)
    except PrometheusStartError as error:
        raise StackError(str(error)) from None
    return Child(
        name="prometheus",
        argv=argv,
        env=dict(os.environ),
        ready_check=_http_ready_at("127.0.0.1", config.prometheus_port, "/-/ready"),
        sink=sink,
        width=width,
        cwd=ROOT,
        note=f"on http://127.0.0.1:{config.prometheus_port}",
    )


def _service_child(
    endpoint: Endpoint, env: Mapping[str, str], sink: TextIO, width: int
) -> ServiceChild:
    component = endpoint.component
    if component.readiness is Readiness.GRPC_HEALTH:
        check = _grpc_serving(endpoint.address)
    else:
        check = _http_ready(endpoint.host, endpoint.port)
    child = Child(
        name=endpoint.name,
        argv=[sys.executable, "-m", component.module],
        env=env,
        ready_check=check,
        sink=sink,
        width=width,
        cwd=ROOT,
        note=f"starting on {endpoint.address}",
    )
    return ServiceChild(endpoint, child)


async def run_stack(
    config: StackConfig, environ: Mapping[str, str], policy: RestartPolicy | None = None
) -> int:
    """Start, supervise and stop the stack; the process exit code."""
    check_ports(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    hurry = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():  # a second Ctrl-C: no more waiting for graceful stops
            hurry.set()
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)

    children: list[Child] = []
    try:
        width = max(len("nats-server"), *(len(e.name) for e in config.endpoints)) + 1
        nats: list[Child] = []
        if config.external_nats_url is None:
            nats = _nats_children(config, sys.stderr, width)
            for node in nats:
                children.append(node)
                await node.launch()
        prometheus = None
        if config.prometheus_port is not None:
            # Before the services, so it is stopped after them and sees them go.
            prometheus = _prometheus_child(config, sys.stderr, width)
            children.append(prometheus)
            await prometheus.launch()
        environ = {**environ, **service_client_environment(config.data_dir, environ)}
        services = [
            _service_child(
                endpoint, _child_environment(environ, endpoint, config), sys.stderr, width
            )
            for endpoint in config.endpoints
        ]
        for service in services:
            children.append(service.child)
            await service.child.launch()
        code = await _supervise(
            config,
            children,
            stop,
            lambda: _endpoint_table(config, nats, services, prometheus),
            policy or RestartPolicy(),
        )
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        code = 1
    finally:
        await stop_children(children, hurry)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return code


async def _first_exit(children: Sequence[Child]) -> Child:
    waits = {asyncio.create_task(child.wait_exit()): child for child in children}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        return waits[done.pop()]
    finally:
        for task in waits:
            task.cancel()


async def _supervise(
    config: StackConfig,
    children: Sequence[Child],
    stop: asyncio.Event,
    banner: Callable[[], str],
    policy: RestartPolicy,
) -> int:
    """Wait for readiness, then keep every process running until a stop signal.

    During start-up a process that exits stops the stack: it is a setting or the
    environment to fix, and a restart would only repeat it. Once the stack is ready, a
    process that exits is started again (see `scripts.supervisor`); the exit code is
    non-zero only when one crashed too often.
    """

    async def all_ready() -> None:
        await asyncio.gather(*(child.wait_ready() for child in children))

    ready = asyncio.create_task(asyncio.wait_for(all_ready(), config.startup_timeout))
    died = asyncio.create_task(_first_exit(children))
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({ready, died, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if died.done():
            child = died.result()
            print(await child.report(f"{child.describe_exit()} during start-up"), file=sys.stderr)
            return 1
        if stopped.done():
            return 0
        if ready.exception() is not None:
            late = [f"{c.name} ({c.last_state})" for c in children if not c.ready]
            print(
                f"stack: not ready after {config.startup_timeout:g}s: {', '.join(late)}",
                file=sys.stderr,
            )
            return 1
    finally:
        for task in (ready, died):
            task.cancel()
        await asyncio.gather(ready, died, return_exceptions=True)
    print(banner(), flush=True)
    keepers = [
        asyncio.create_task(
            child.keep_running(policy, config.startup_timeout, stop), name=f"keep-{child.name}"
        )
        for child in children
    ]
    try:
        await asyncio.wait({stopped, *keepers}, return_when=asyncio.FIRST_COMPLETED)
        for keeper in keepers:
            if keeper.done() and (failure := keeper.exception()) is not None:
                print(
                    str(failure) if isinstance(failure, GaveUp) else repr(failure), file=sys.stderr
                )
                return 1
        return 0
    finally:
        stop.set()  # a keeper that is waiting to restart its process gives up the wait
        for keeper in keepers:
            keeper.cancel()
        stopped.cancel()
        await asyncio.gather(stopped, *keepers, return_exceptions=True)


def argument_parser() -> argparse.ArgumentParser:
    """The flags of `scripts/stack`."""
    parser = argparse.ArgumentParser(
        prog="scripts/stack",
        description="Start NATS and every service locally; Ctrl-C stops them all. Each "
        "service's own settings (IDENTITY_PORT, WALLET_DATABASE_URL, ...) pass through.",
    )
    parser.add_argument(
        "--data-dir", help="SQLite files, NATS store and logs (env SUPERAPP_DATA_DIR; .data)"
    )
    parser.add_argument(
        "--nats-url", help="use this NATS instead of starting one (env SUPERAPP_NATS_URL)"
    )
    parser.add_argument(
        "--nats-port", help="port of the NATS the stack starts (env SUPERAPP_NATS_PORT; 7222)"
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="processes of every service and of the BFF (default 1; more need PostgreSQL)",
    )
    parser.add_argument(
        "--nats-cluster",
        type=int,
        default=1,
        help="NATS nodes: 1 (default), or 3 for a JetStream cluster with R3 streams",
    )
    parser.add_argument(
        "--only",
        metavar="NAME[,NAME...]",
        help="start NATS and only these components, e.g. identity,wallet to work on them "
        "alone; calls to the others go to their <PREFIX><PEER>_ADDR or default ports",
    )
    parser.add_argument(
        "--observability",
        action="store_true",
        help="also run Prometheus on 127.0.0.1:7390 (env SUPERAPP_PROMETHEUS_PORT) scraping "
        "every process, with the alerting and recording rules of deploy/observability",
    )
    parser.add_argument(
        "--crash-window",
        type=float,
        default=RestartPolicy.window_seconds,
        help=f"a component that crashes {RestartPolicy.max_crashes} times within this many "
        f"seconds is not started again and the stack stops (default "
        f"{RestartPolicy.window_seconds:g}; a slow machine restarts slowly, so crashes are "
        "further apart there)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=None,
        help="seconds every component gets to report ready (default 90 per replica: the "
        "replicas start together on the same cores)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m scripts.localstack`."""
    args = argument_parser().parse_args(argv)
    try:
        config = StackConfig.resolve(args, os.environ)
    except ConfigurationError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 2
    if args.crash_window <= 0:
        print("stack: --crash-window must be positive", file=sys.stderr)
        return 2
    policy = RestartPolicy(window_seconds=args.crash_window)
    try:
        return asyncio.run(run_stack(config, os.environ, policy))
    except ConfigurationError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 2
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
