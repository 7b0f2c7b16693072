"""Servers under test, each in its own process so it never shares the load generator's GIL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = [
    "ServerProcess",
    "ServerStartError",
    "health_check_method",
    "python_module",
    "wait_for_health",
]

ROOT = Path(__file__).resolve().parents[2]

Readiness = Callable[[str], Awaitable[None]]
"""Returns once the server at the address answers; the caller bounds the wait."""


class ServerStartError(RuntimeError):
    """A server under test did not come up; the message carries its last log lines."""


def health_check_method(
    channel: grpc.aio.Channel,
) -> grpc.aio.UnaryUnaryMultiCallable[
    health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
]:
    """The generated stub's `Check`, typed (typeshed's `HealthStub` declares no methods)."""
    check: grpc.aio.UnaryUnaryMultiCallable[
        health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
    ] = health_pb2_grpc.HealthStub(channel).Check  # type: ignore[attr-defined]
    return check


async def wait_for_health(address: str) -> None:
    """Wait until grpc.health.v1 at `address` reports the server SERVING."""
    async with grpc.aio.insecure_channel(address) as channel:
        check = health_check_method(channel)
        while True:
            try:
                reply = await check(health_pb2.HealthCheckRequest(), timeout=1.0)
            except grpc.aio.AioRpcError:
                pass
            else:
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.05)


class ServerProcess:
    """A child process serving on 127.0.0.1:`port`, its output kept in `log_file`.

    `ready` waits until the server answers; `start` gives it `start_seconds`, and `stop`
    gives a SIGTERM-ed server `stop_seconds` before killing it.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        log_file: Path,
        env: Mapping[str, str] | None = None,
        ready: Readiness = wait_for_health,
        # Seconds on an idle machine; past 30 s when the suite and two busy loops share
        # the CPUs with the bench's dozen servers (seen). Two minutes tells slow from broken.
        start_seconds: float = 120.0,
        stop_seconds: float = 10.0,
    ) -> None:
        self.name = name
        self.port = port
        self.log_file = log_file
        self._argv = list(argv)
        self._env = {**os.environ, **(env or {})}
        self._ready = ready
        self._start_seconds = start_seconds
        self._stop_seconds = stop_seconds
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """host:port for a gRPC channel."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> ServerProcess:
        """Start the process and wait until it is ready, or stop it and raise."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("wb") as log:
            # Popen spawns with vfork, which skips gRPC's fork handlers; an event-loop
            # fork (uvloop) runs them and gRPC complains about its busy threads.
            process = subprocess.Popen(  # noqa: ASYNC220
                self._argv, cwd=ROOT, env=self._env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=log,
            )  # fmt: skip
        self._process = process
        ready = asyncio.ensure_future(self._ready(self.address))
        try:
            async with asyncio.timeout(self._start_seconds):
                while not ready.done():
                    if process.poll() is not None:
                        raise ServerStartError(
                            f"{self.name} exited with {process.returncode}: {self._last_words()}"
                        )
                    await asyncio.wait({ready}, timeout=0.05)
            ready.result()
        except BaseException as error:
            ready.cancel()
            await asyncio.gather(ready, return_exceptions=True)
            await self.stop()
            if isinstance(error, TimeoutError):
                raise ServerStartError(
                    f"{self.name} not ready after {self._start_seconds:.0f}s: {self._last_words()}"
                ) from None
            raise
        return self

    async def stop(self) -> None:
        """Ask the server to shut down (SIGTERM), then kill it if it lingers, and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, self._stop_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait()

    def _last_words(self, count: int = 3) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-count:]) or "(empty log)"


def python_module(module: str, *args: str) -> list[str]:
    """argv that runs `module` with this interpreter."""
    return [sys.executable, "-m", module, *args]
