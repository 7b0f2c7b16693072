"""A minimal HTTP/1.1 keep-alive GET client for the bench's load generator.

Python HTTP clients cost more per request than the servers under test answer them, which
would make the client the bottleneck; this one writes a prepared request and reads a
Content-Length response off an idle connection of its pool, nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

__all__ = ["HttpPool", "HttpStatusError"]


class HttpStatusError(Exception):
    """The server answered with a status other than 200."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.kind = f"HTTP_{status}"


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


class HttpPool:
    """Keep-alive connections to one server; each request takes an idle one or opens one."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._idle: list[_Connection] = []
        self._all: list[_Connection] = []

    def request(self, path: str, headers: Mapping[str, str] | None = None) -> bytes:
        """The raw bytes of a GET of `path`, prepared once and sent many times."""
        lines = [f"GET {path} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def send(self, request: bytes) -> bytes:
        """Send a prepared request; the body of a 200, else HttpStatusError."""
        connection = self._idle.pop() if self._idle else await self._open()
        try:
            status, body = await connection.exchange(request)
        except BaseException:
            connection.close()
            self._all.remove(connection)
            raise
        self._idle.append(connection)
        if status != 200:
            raise HttpStatusError(status)
        return body

    async def _open(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        connection = _Connection(reader, writer)
        self._all.append(connection)
        return connection

    async def close(self) -> None:
        """Close every connection."""
        for connection in self._all:
            connection.close()
        self._all.clear()
        self._idle.clear()
