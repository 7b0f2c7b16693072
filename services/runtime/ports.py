"""Port probes shared by the services, the stack launcher, the bench and the tests."""

from __future__ import annotations

import socket

__all__ = ["FreePorts", "free_port", "port_in_use"]


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that was free a moment ago."""
    with socket.socket(_family(host)) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class FreePorts:
    """Free ports of which none is handed out twice.

    `free_port` closes its probe, so two calls in a row may get the same port back from
    the kernel; whoever needs several ports at once (a stack, a cluster) picks them here.
    """

    def __init__(self) -> None:
        self._given: set[int] = set()

    def pick(self, host: str = "127.0.0.1") -> int:
        """A port on `host` that was free a moment ago and that this picker never gave."""
        while (port := free_port(host)) in self._given:
            pass
        self._given.add(port)
        return port


def port_in_use(host: str, port: int) -> bool:
    """Whether a live listener holds `host:port`.

    The probe binds with SO_REUSEADDR, as servers do, so connections of a previous run
    still in TIME_WAIT do not count: a quick restart is not refused.
    """
    with socket.socket(_family(host)) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False
