"""What scenarios set themselves up with: servers in their own processes, client channels,
a scratch directory; all released when the run ends, also on Ctrl-C. It also names the
processes behind an address, whose CPU time the bench reports per call."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import TypeVar

import grpc

from scripts.benchmark.echo_server import ECHO_METHOD
from scripts.benchmark.postgres_server import (
    create_database,
    drop_database,
    postgres_processes,
)
from scripts.benchmark.process_cpu import Processes, ProcessesFound
from scripts.benchmark.server_process import ServerProcess, ServerStartError, python_module
from scripts.localstack import http_ready_problem, service_client_environment
from scripts.nats_process import NatsProcess
from services.identity.config import IdentitySettings
from services.runtime.ports import free_port

__all__ = ["BENCH_ADMIN_EMAIL", "Environment"]

_T = TypeVar("_T")

BENCH_ADMIN_EMAIL = "bench-admin@example.com"
"""Signs up as the first admin of the bench's identity (to top wallets up)."""

# A hung server must not hang the bench: a call this slow counts as an error.
_CALL_TIMEOUT_SECONDS = 10.0


_DEPLOYED_HASHING = {
    f"IDENTITY_{name.upper()}": str(IdentitySettings.model_fields[name].default)
    for name in ("password_hash_memory_kib", "password_hash_iterations")
}


async def _echo_answers(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(ECHO_METHOD)
        while True:
            try:
                await echo(b"ready", timeout=1.0)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.05)
            else:
                return


def _http_answers(path: str) -> Callable[[str], Awaitable[None]]:
    """Readiness of an HTTP server: GET `path` answers 200."""

    async def ready(address: str) -> None:
        host, port = address.rsplit(":", 1)
        while True:
            if await http_ready_problem(host, int(port), path) is None:
                return
            await asyncio.sleep(0.05)

    return ready


def _instance(name: str, settings: Mapping[str, str] | None) -> str:
    """The key, log and data directory name of a server: `name` on its defaults, else
    `name` and a short digest of its settings."""
    if not settings:
        return name
    spelled = "\n".join(f"{key}={value}" for key, value in sorted(settings.items()))
    return f"{name}-{hashlib.sha256(spelled.encode()).hexdigest()[:8]}"


class Environment:
    """Starts each server once per run, on demand, and opens channels to them.

    `channels_per_target` client channels, each with its own connection, spread the load
    generator's workers over several HTTP/2 connections.
    """

    def __init__(self, work_dir: Path, stack: AsyncExitStack, channels_per_target: int) -> None:
        self.work_dir = work_dir
        """Scratch space for this run; scenarios may put databases here."""
        self.call_timeout = _CALL_TIMEOUT_SECONDS
        self._stack = stack
        self._channels_per_target = channels_per_target
        self._servers: dict[str, ServerProcess] = {}
        self._starting: dict[str, asyncio.Lock] = {}
        self._failed: dict[str, ServerStartError] = {}
        self._nats: dict[str, NatsProcess] = {}
        self._databases: dict[str, str] = {}
        # Tells this run's PostgreSQL databases from another run's.
        self._database_prefix = f"superapp_bench_{secrets.token_hex(4)}_"

    async def echo_server(self) -> str:
        """Address of the bare grpc.aio echo server."""

        def build() -> ServerProcess:
            port = free_port()
            return ServerProcess(
                "echo",
                python_module("scripts.benchmark.echo_server", "--port", str(port)),
                port=port,
                log_file=self.work_dir / "echo.log",
                ready=_echo_answers,
            )

        return await self._server("echo", build)

    async def service(
        self, name: str, settings: Mapping[str, str] | None = None, *, replica: int = 1
    ) -> str:
        """Address of our service `name`, run as `python -m services.<name>` on SQLite.

        The services share one private nats-server, and wallet and catalogue trust the
        bench's identity (started first), as in the local stack. `settings` (environment
        variables) start another instance of the service with them, once per run; they
        may name another NATS server, identity or database instead. `replica` 2, 3, ...
        start more processes of an instance, each on its own port (replicas share a
        database only on PostgreSQL).
        """
        settings = settings or {}
        prefix = f"{name.upper()}_"
        wiring = {}
        if f"{prefix}NATS_URL" not in settings:
            wiring[f"{prefix}NATS_URL"] = self.nats_url()
        # The orders service's client secret, identity's entry for it and its
        # key-encryption key, as the stack has them.
        clients = service_client_environment(self.work_dir, {})
        if name == "identity":
            wiring["IDENTITY_BOOTSTRAP_ADMIN_EMAIL"] = BENCH_ADMIN_EMAIL
            wiring["IDENTITY_SERVICE_CLIENTS"] = clients["IDENTITY_SERVICE_CLIENTS"]
            wiring["IDENTITY_KEY_ENCRYPTION_KEYS"] = clients["IDENTITY_KEY_ENCRYPTION_KEYS"]
            # Hashing as deployed, whatever the caller's environment (the suite's is cheap).
            wiring.update(_DEPLOYED_HASHING)
        elif f"{prefix}IDENTITY_ADDR" not in settings:
            wiring[f"{prefix}IDENTITY_ADDR"] = await self.service("identity")
        if name == "orders":
            wiring["ORDERS_CLIENT_SECRET"] = clients["ORDERS_CLIENT_SECRET"]
            for peer in ("wallet", "catalogue"):
                wiring[f"ORDERS_{peer.upper()}_ADDR"] = await self.service(peer)
        if name == "miniapps":
            # Its own token introspects mini-app tokens; payments need orders too, which
            # the launch and discovery scenarios do not, so orders is not started here.
            wiring["MINIAPPS_CLIENT_SECRET"] = clients["MINIAPPS_CLIENT_SECRET"]
        key = _instance(name, settings) + (f"-replica{replica}" if replica > 1 else "")

        def build() -> ServerProcess:
            port = free_port()
            data_dir = self.work_dir / key
            data_dir.mkdir(parents=True, exist_ok=True)
            return ServerProcess(
                key,
                python_module(f"services.{name}"),
                port=port,
                log_file=self.work_dir / f"{key}.log",
                env={
                    f"{prefix}HOST": "127.0.0.1",
                    f"{prefix}PORT": str(port),
                    f"{prefix}DATA_DIR": str(data_dir),
                    f"{prefix}DATABASE_URL": "",
                    f"{prefix}SHUTDOWN_GRACE_SECONDS": "2",
                    **wiring,
                    **settings,
                },
            )

        return await self._server(key, build)

    async def postgres_database(self, name: str) -> str:
        """The URL of a fresh PostgreSQL database for `name` (made once per run, dropped
        when the run ends), on the server `SUPERAPP_BENCH_POSTGRES_URL` names (default
        the local one, as the tests use). Raises when there is no server to use."""
        async with self._starting.setdefault(f"postgresql:{name}", asyncio.Lock()):
            if name not in self._databases:
                url = await create_database(f"{self._database_prefix}{name}")
                self._stack.push_async_callback(drop_database, url)
                self._databases[name] = url
        return self._databases[name]

    async def postgres_processes(self) -> ProcessesFound | None:
        """The PostgreSQL server's processes that serve this run's databases, for their
        CPU time; None when the server is not on this machine."""
        return await postgres_processes(self._database_prefix)

    async def asgi_hello(self) -> str:
        """host:port of the bare ASGI app, served by uvicorn as the BFF is."""

        def build() -> ServerProcess:
            port = free_port()
            return ServerProcess(
                "asgi-hello",
                python_module("scripts.benchmark.asgi_hello", "--port", str(port)),
                port=port,
                log_file=self.work_dir / "asgi-hello.log",
                ready=_http_answers("/"),
            )

        return await self._server("asgi-hello", build)

    async def bff(self, settings: Mapping[str, str] | None = None) -> str:
        """host:port of the BFF (`python -m bff`) in front of every service; `settings`
        (environment variables) start another instance with them, once per run."""
        names = ("identity", "wallet", "catalogue", "orders", "miniapps")
        # Side by side: each waits only for the servers it needs (identity first), so
        # the BFF's first scenario waits for the slowest start, not for the sum of them.
        # All of them end before this does: none is left starting behind a failure.
        started = await asyncio.gather(
            *(self.service(name) for name in names), return_exceptions=True
        )
        upstreams = {}
        for name, address in zip(names, started, strict=True):
            if isinstance(address, BaseException):
                raise address
            upstreams[f"BFF_{name.upper()}_ADDR"] = address
        key = _instance("bff", settings)
        clients = service_client_environment(self.work_dir, {})

        def build() -> ServerProcess:
            port = free_port()
            return ServerProcess(
                key,
                python_module("bff"),
                port=port,
                log_file=self.work_dir / f"{key}.log",
                env={
                    "BFF_HOST": "127.0.0.1",
                    "BFF_PORT": str(port),
                    "BFF_SHUTDOWN_GRACE_SECONDS": "2",
                    # identity knows its digest (see `service`): the mini-app API works.
                    "BFF_CLIENT_SECRET": clients["BFF_CLIENT_SECRET"],
                    **upstreams,
                    **(settings or {}),
                },
                ready=_http_answers("/readyz"),
            )

        return await self._server(key, build)

    def processes(self, *addresses: str, nats_url: str | None = None) -> Processes:
        """The processes of the servers at `addresses`, each with its children (a
        service's outbox relay), plus the nats-server at `nats_url` (where publishing
        is part of the path)."""
        by_address = {server.address: server for server in self._servers.values()}
        pids = [by_address[address].pid for address in addresses]
        if nats_url is not None:
            pids += [nats.pid for nats in self._nats.values() if nats.url == nats_url]
        if None in pids or len(pids) < len(addresses) + (nats_url is not None):
            raise RuntimeError(f"not running: one of {addresses}, {nats_url}")
        return Processes(trees=[pid for pid in pids if pid is not None])

    def nats_url(self, name: str = "services") -> str:
        """The URL of private nats-server `name`, started on first use: by default the
        one the services share; another name, another server (another deployment)."""
        if name not in self._nats:
            nats = self._nats[name] = NatsProcess(self.work_dir / f"nats-{name}").start()

            async def stop() -> None:
                await asyncio.to_thread(nats.stop)

            # Pushed before any service that uses it, so it stops after them.
            self._stack.push_async_callback(stop)
        return self._nats[name].url

    async def channels(self, address: str) -> list[grpc.aio.Channel]:
        """Ready client channels to `address`, closed at the end of the run."""
        opened = []
        for _ in range(self._channels_per_target):
            # A local subchannel pool gives each channel its own connection; by default
            # channels to one target share a single subchannel.
            channel = grpc.aio.insecure_channel(
                address, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            self._stack.push_async_callback(channel.close, None)
            await asyncio.wait_for(channel.channel_ready(), timeout=self.call_timeout)
            opened.append(channel)
        return opened

    def on_close(self, release: Callable[[], Awaitable[None]]) -> None:
        """Run `release` when the run ends (after the measurements, before servers stop)."""
        self._stack.push_async_callback(release)

    async def enter(self, context: AbstractAsyncContextManager[_T]) -> _T:
        """Enter `context` for the rest of the run; it is left when the run ends."""
        return await self._stack.enter_async_context(context)

    async def _server(self, key: str, build: Callable[[], ServerProcess]) -> str:
        lock = self._starting.setdefault(key, asyncio.Lock())
        async with lock:
            if key in self._failed:
                raise self._failed[key]
            if key not in self._servers:
                server = build()
                try:
                    await server.start()
                except ServerStartError as error:
                    self._failed[key] = error
                    raise
                self._stack.push_async_callback(server.stop)
                self._servers[key] = server
        return self._servers[key].address
