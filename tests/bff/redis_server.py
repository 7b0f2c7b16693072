"""A private redis-server for the rate-limit storage tests, on a port of its own.

Never the machine's 6379: each server binds a free port on 127.0.0.1, keeps nothing on
disk, and can be stopped and started again on the same port (a storage that goes away).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from scripts.child_processes import die_with_parent
from services.runtime.ports import free_port

__all__ = ["RedisServer", "redis_server_binary"]


def redis_server_binary() -> str | None:
    """The installed redis-server, or None."""
    return shutil.which("redis-server")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """redis-server on 127.0.0.1:`port` (a free one by default), without persistence."""

    def __init__(self, work_dir: Path, port: int = 0) -> None:
        self.work_dir = work_dir
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The BFF_RATE_LIMIT_STORAGE value that points at this server."""
        return f"async+redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = redis_server_binary()
        assert binary is not None, "redis-server is not installed"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.work_dir),
            "--logfile", str(self.work_dir / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent(os.getpid()),
        )
        deadline = time.monotonic() + timeout
        while not _answers(self.port):
            assert self._process.poll() is None, (self.work_dir / "redis.log").read_text()
            assert time.monotonic() < deadline, f"redis-server not ready after {timeout}s"
            time.sleep(0.05)
        return self

    def keys(self) -> list[str]:
        """Every key the server holds (redis-cli KEYS *)."""
        cli = shutil.which("redis-cli")
        assert cli is not None, "redis-cli is not installed"
        listed = subprocess.run(
            [cli, "-h", "127.0.0.1", "-p", str(self.port), "--raw", "KEYS", "*"],
            capture_output=True,
            check=True,
            timeout=10,
        )
        return listed.stdout.decode().splitlines()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None
