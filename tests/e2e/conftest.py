"""The local stack as the README starts it: `bash scripts/stack` with free ports, temp data."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.localstack import COMPONENTS, READY_LINE
from services.runtime.ports import port_in_use
from tests.conftest import process_alive

ROOT = Path(__file__).resolve().parents[2]
# Generous: the Python services import grpc, SQLAlchemy and OpenTelemetry at once on 2 cores,
# and the suite starts up to three stacks at a time beside its other tests. At load 30-40 a
# stack took 134-138 s to be ready, past the launcher's own 90 s default, so the tests give
# the launcher STARTUP_TIMEOUT (unless a test sets its own) and wait a little longer.
STARTUP_TIMEOUT = 300.0
READY_TIMEOUT = STARTUP_TIMEOUT + 30.0
EXIT_TIMEOUT = 40.0
_STARTUP_ARGS = ("--startup-timeout", f"{STARTUP_TIMEOUT:g}")


_BLOCK = 200
"""Ports one stack gets: NATS at +8 (a 3-node cluster's nodes at +18, +28), Prometheus
at +9, component i's gRPC port at +10+i and its metrics port at +110+i; a replica r
adds 10 r to each (the launcher's rule), so 9 replicas of 6 components stay inside."""
_WORKER_SLICE = 2000
_FIRST_PORT = 20000


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _stack_ports() -> int:
    """The first port of a block of `_BLOCK` ports that are all free now.

    Below the kernel's ephemeral range, so no server bound to port 0 and no outgoing
    connection can take one of them in the seconds (at load, a minute) between this
    pick and the stack's processes listening: picked from that range, a port was once
    taken meanwhile and the stack stopped with "ORDERS_PORT: cannot listen". Each
    pytest-xdist worker draws from its own slice, so two stacks never draw the same.
    """
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    slices = max(1, (_ephemeral_low() - _FIRST_PORT) // _WORKER_SLICE)
    first = _FIRST_PORT + (worker % slices) * _WORKER_SLICE
    blocks = list(range(first, first + _WORKER_SLICE, _BLOCK))
    random.shuffle(blocks)
    for block in blocks:
        if not any(port_in_use("127.0.0.1", port) for port in range(block, block + _BLOCK)):
            return block
    raise RuntimeError(f"no free block of {_BLOCK} ports from {first}")


@dataclass
class Stack:
    """One `bash scripts/stack` run; stdout and stderr go to files so nothing blocks."""

    data_dir: Path
    env: dict[str, str]
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    ready_after: float | None = None
    """Seconds from `start` to the ready line, once `wait_ready` has seen it."""

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.env['SUPERAPP_NATS_PORT']}"

    def address(self, variable: str) -> str:
        return f"127.0.0.1:{self.env[variable]}"

    @property
    def prometheus_url(self) -> str:
        """Where the stack's Prometheus listens (with --observability)."""
        return f"http://127.0.0.1:{self.env['SUPERAPP_PROMETHEUS_PORT']}"

    def start(self) -> Stack:
        self._started = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        run = len(list(self.data_dir.parent.glob(f"{self.data_dir.name}-*.out")))
        self._out = self.data_dir.parent / f"{self.data_dir.name}-{run}.out"
        self._err = self.data_dir.parent / f"{self.data_dir.name}-{run}.err"
        with self._out.open("wb") as out, self._err.open("wb") as err:
            timeout = () if "--startup-timeout" in self.args else _STARTUP_ARGS
            self.process = subprocess.Popen(
                ["bash", "scripts/stack", *self.args, *timeout],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=err,
            )
        return self

    @property
    def stdout(self) -> str:
        return self._out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self._err.read_text(errors="replace")

    def pids(self) -> dict[str, int]:
        """Every process the launcher said it started, by name."""
        return {
            name: int(pid)
            for name, pid in re.findall(r"^stack: (\S+) pid (\d+)", self.stderr, re.M)
        }

    def log_records(self, component: str) -> list[dict[str, object]]:
        """The JSON log records `component` wrote, as the launcher passed them on."""
        prefix = re.compile(rf"^{re.escape(component)}\s*\| (\{{.*\}})$", re.M)
        return [json.loads(line) for line in prefix.findall(self.stderr)]

    def relay_pids(self) -> dict[str, int]:
        """The outbox relays the services started as their own children, by service."""
        marker = str(self.data_dir).encode()
        found: dict[str, int] = {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or not process_alive(int(proc.name)):
                continue
            try:
                environ = (proc / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if not any(marker in entry for entry in environ):
                continue
            for entry in environ:
                if entry.startswith(b"SUPERAPP_RELAY_SERVICE="):
                    found[entry.partition(b"=")[2].decode()] = int(proc.name)
        return found

    async def wait_ready(self, within: float = READY_TIMEOUT) -> None:
        assert self.process is not None
        deadline = time.monotonic() + within
        while READY_LINE not in self.stdout:
            if self.process.poll() is not None:
                pytest.fail(f"stack exited {self.process.returncode}:\n{self.stderr[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"stack not ready in {within}s:\n{self.stderr[-3000:]}")
            await asyncio.sleep(0.1)
        if self.ready_after is None:
            self.ready_after = time.monotonic() - self._started

    async def wait_exit(self, within: float = EXIT_TIMEOUT) -> int:
        assert self.process is not None
        deadline = time.monotonic() + within
        while (code := self.process.poll()) is None:
            if time.monotonic() > deadline:
                pytest.fail(f"stack still running after {within}s:\n{self.stderr[-3000:]}")
            await asyncio.sleep(0.1)
        return code

    async def wait_gone(self, pids: dict[str, int], within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while alive := {name: pid for name, pid in pids.items() if process_alive(pid)}:
            if time.monotonic() > deadline:
                pytest.fail(f"still running: {alive}")
            await asyncio.sleep(0.1)

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def clean_up(self) -> None:
        """After a failed test: nothing of this run may outlive it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pid in [*self.pids().values(), *self.relay_pids().values()]:
            if process_alive(pid) and self._belongs_here(pid):
                os.kill(pid, signal.SIGKILL)

    def _belongs_here(self, pid: int) -> bool:
        # Guards against a recycled pid: ours name the data dir in argv or environment.
        marker = str(self.data_dir).encode()
        try:
            proc = Path(f"/proc/{pid}")
            return marker in (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            return False


StackFactory = Callable[..., Stack]


class _StackMaker:
    """Builds stacks on free ports; each gets a data dir of its own under `root` unless
    given one, and `clean_up` leaves nothing of any of them running."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self.made: list[Stack] = []

    def __call__(
        self, data_dir: Path | None = None, args: tuple[str, ...] = (), **extra_env: str
    ) -> Stack:
        prefixes = ("SUPERAPP_", *(component.env_prefix for component in COMPONENTS))
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        block = _stack_ports()
        env["SUPERAPP_NATS_PORT"] = str(block + 8)
        env["SUPERAPP_PROMETHEUS_PORT"] = str(block + 9)  # used with --observability
        # Every process serves gRPC and metrics (the launcher prints where).
        for index, component in enumerate(COMPONENTS):
            env[component.port_variable] = str(block + 10 + index)
            env[component.metrics_port_variable] = str(block + 110 + index)
        env["SUPERAPP_DATA_DIR"] = str(data_dir or self._root / f"data{len(self.made)}")
        env.update(extra_env)
        stack = Stack(Path(env["SUPERAPP_DATA_DIR"]), env, args)
        self.made.append(stack)
        return stack

    def clean_up(self) -> None:
        for stack in self.made:
            stack.clean_up()


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[StackFactory]:
    """Builds stacks on free ports; each gets a temp data dir unless given one."""
    maker = _StackMaker(tmp_path)
    yield maker
    maker.clean_up()


class SharedStack:
    """One stack for the tests of a file, started by the first test that asks for it.

    A stack costs ~40 CPU-seconds before anything is tested (a dozen Python processes
    importing grpc, SQLAlchemy and OpenTelemetry), so a file's tests share one where
    what each does leaves the others' claims intact: each test uses users and ids of
    its own. A test may stop the stack (that is what some of them prove); the next one
    to ask then gets a new stack on a fresh data dir, so every test also runs alone.
    """

    def __init__(self, make: StackFactory, args: tuple[str, ...], env: dict[str, str]) -> None:
        self._make = make
        self._args = args
        self._env = env
        self._stack: Stack | None = None

    def start(self) -> Stack:
        """The file's stack, starting now if no test has started it yet or one stopped
        it; not waited for."""
        stack = self._stack
        if stack is None or stack.process is None or stack.process.poll() is not None:
            stack = self._make(args=self._args, **self._env).start()
            self._stack = stack
        return stack

    async def running(self) -> Stack:
        """The file's stack, ready; started now if no test has yet or one stopped it."""
        stack = self.start()
        await stack.wait_ready()
        return stack

    async def start_again(self) -> Stack:
        """A new stack on the data dir of the stopped one, ready: the file's stack now."""
        old = self._stack
        assert old is not None, "no stack has run yet"
        assert old.process is not None, "no stack has run yet"
        assert old.process.poll() is not None, "the stack is still running"
        self._stack = self._make(old.data_dir, args=self._args, **self._env).start()
        await self._stack.wait_ready()
        return self._stack


SharedStackFactory = Callable[..., SharedStack]


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedStackFactory]:
    """`shared_stack(args, **env)`: the file's one `SharedStack` with these settings
    (a file asks once, in a fixture of its own)."""
    maker = _StackMaker(tmp_path_factory.mktemp("stack"))

    def share(args: tuple[str, ...] = (), **env: str) -> SharedStack:
        return SharedStack(maker, args, env)

    yield share
    maker.clean_up()
