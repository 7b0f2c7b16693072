"""argon2id password hashing that cannot eat the CPU.

Parameters follow OWASP (m=19 MiB, t=2, p=1). Hashes run in worker threads (argon2
releases the GIL), and a token bucket holds hashing to a configured share of a core:
at its allowed rate, sign-ins and sign-ups can never starve the rest of the service.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["Busy", "HashBudget", "Passwords", "owasp_hasher"]


def owasp_hasher() -> PasswordHasher:
    """argon2id with OWASP's minimum: 19 MiB of memory, 2 iterations, 1 lane."""
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class HashBudget:
    """A token bucket allowing `rate` hashes per second with a small burst."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self._burst = burst
        self._tokens = burst
        self._updated = time.monotonic()

    def delay(self) -> float:
        """Seconds until a hash may start (0 if now), reserving that slot."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def release(self) -> None:
        """Give back a slot that was reserved but will not be used."""
        self._tokens = min(self._burst, self._tokens + 1)


@dataclass(frozen=True, slots=True)
class Busy(Exception):
    """Hashing is at its budget; retry after `retry_after` seconds."""

    retry_after: float


class Passwords:
    """Hash and verify passwords within a CPU budget, with equal work for unknown users."""

    def __init__(self, hasher: PasswordHasher, budget: HashBudget, max_wait: float) -> None:
        self._hasher = hasher
        self._budget = budget
        self._max_wait = max_wait
        # Verified against when the account does not exist, so an unknown email costs
        # the same time as a wrong password and reveals nothing.
        self._decoy = hasher.hash("decoy password that matches nothing")

    @classmethod
    def calibrated(cls, hasher: PasswordHasher, cores: float, max_wait: float = 2.0) -> Passwords:
        """A budget of `cores` of CPU time, measured from one hash on this machine."""
        started = time.perf_counter()
        hasher.hash("calibration")
        seconds = max(time.perf_counter() - started, 1e-3)
        rate = cores / seconds
        return cls(hasher, HashBudget(rate=rate, burst=max(1.0, rate)), max_wait)

    @property
    def hashes_per_second(self) -> float:
        """The budgeted rate of hashes."""
        return self._budget.rate

    async def _turn(self) -> None:
        delay = self._budget.delay()
        if delay > self._max_wait:
            self._budget.release()
            raise Busy(delay)
        if delay:
            await asyncio.sleep(delay)

    async def hash(self, password: str) -> str:
        """An encoded argon2id hash of `password`; raises Busy past the budget."""
        await self._turn()
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, encoded: str | None, password: str) -> bool:
        """Whether `password` matches `encoded`; None (no account) spends the same work."""
        await self._turn()
        try:
            matched = await asyncio.to_thread(self._hasher.verify, encoded or self._decoy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return matched and encoded is not None

    def needs_rehash(self, encoded: str) -> bool:
        """True when `encoded` was made with other parameters than today's."""
        return self._hasher.check_needs_rehash(encoded)
