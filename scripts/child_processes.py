"""Child processes that never outlive the launcher that started them."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when its parent dies, even by SIGKILL.

    PR_SET_PDEATHSIG survives exec and fires when the forking thread ends; that is the main
    thread here, so in effect when the parent process ends. SIGTERM, not SIGKILL, so the
    child still drains (a service closes its database, nats-server flushes its store).
    Other systems have no such facility and get None: there a killed parent leaves its
    children running.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    death_signal = ctypes.c_ulong(signal.SIGTERM)

    def arrange() -> None:
        # Runs in the forked child before exec: no imports, no locks, only a syscall.
        prctl(_PR_SET_PDEATHSIG, death_signal)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return arrange
