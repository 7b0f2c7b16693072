"""argon2id password hashing that cannot eat the CPU.

Parameters are settings, OWASP's minimum by default (m=19 MiB, t=2, p=1). Hashes run in
worker threads (argon2 releases the GIL), and a budget holds hashing to a configured
share of the cores: at its allowed rate, sign-ins and sign-ups can never starve the rest
of the service.

The budget is CPU time, not wall time. Each hash's CPU time is measured in the thread
that runs it (`time.thread_time`): on a busy machine a hash waits for a core and its wall
time grows many times over (20 ms became 340 ms with eight busy processes on two cores),
while its CPU time barely moves (20 ms became 26 ms). The cost of a hash is a low
percentile of the most recent ones, so a few slow samples (the first hash of a process
pays for faulting in its 19 MiB; a noisy neighbour) cannot set the rate for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "OWASP_ARGON2ID",
    "Busy",
    "HashBudget",
    "HashCost",
    "HashTurn",
    "Passwords",
    "Reservation",
    "meets_owasp",
    "owasp_hasher",
    "password_hasher",
]

_CALIBRATION_SAMPLES = 3
# Below any real argon2id hash; keeps a freak zero reading from meaning "free".
_MIN_COST_SECONDS = 1e-4


OWASP_ARGON2ID = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
"""The argon2id configurations of OWASP's Password Storage Cheat Sheet, each as strong as
the others: (memory in KiB, iterations), one lane."""


def password_hasher(memory_kib: int, iterations: int) -> PasswordHasher:
    """argon2id with `memory_kib` of memory, `iterations` passes and one lane."""
    return PasswordHasher(time_cost=iterations, memory_cost=memory_kib, parallelism=1)


def meets_owasp(memory_kib: int, iterations: int) -> bool:
    """Whether the parameters are at least one of OWASP's configurations."""
    return any(memory_kib >= m and iterations >= t for m, t in OWASP_ARGON2ID)


def owasp_hasher() -> PasswordHasher:
    """argon2id with OWASP's minimum: 19 MiB of memory, 2 iterations, 1 lane."""
    return password_hasher(19 * 1024, 2)


class HashCost:
    """The CPU seconds one hash costs here: a low percentile of the latest samples.

    Noise on a shared machine only ever adds CPU time (cache and memory-bandwidth
    contention, a cold start), so the low end of the samples is the hash's own cost.
    The window rolls, so a real change (a slower host) is followed within `window`
    hashes.
    """

    def __init__(self, *, window: int = 64, quantile: float = 0.2) -> None:
        if window < 1 or not 0 <= quantile <= 1:
            raise ValueError("window must be positive and quantile within [0, 1]")
        self._samples: deque[float] = deque(maxlen=window)
        self._quantile = quantile
        self._seconds: float | None = None

    def record(self, cpu_seconds: float) -> None:
        """Add the CPU time of one hash just served."""
        self._samples.append(max(cpu_seconds, _MIN_COST_SECONDS))
        ordered = sorted(self._samples)
        self._seconds = ordered[int((len(ordered) - 1) * self._quantile)]

    @property
    def seconds(self) -> float:
        """The estimated CPU seconds of one hash; needs one sample at least."""
        if self._seconds is None:
            raise RuntimeError("no hash has been measured yet")
        return self._seconds


@dataclass(frozen=True, slots=True)
class Busy(Exception):
    """Hashing is at its budget; retry after `retry_after` seconds."""

    retry_after: float


@dataclass(frozen=True, slots=True)
class Reservation:
    """One hash's share of the budget, taken."""

    charge: float
    """CPU seconds taken from the budget."""
    start_at: float
    """When the hash may start, on the budget's monotonic clock."""


class HashBudget:
    """A token bucket of CPU time: `cores` CPU-seconds flow in per second, and each hash
    takes its estimated cost. Up to `burst_seconds` of the flow may be spent at once, and
    a hash that would have to wait more than `max_wait` seconds for its share is refused."""

    def __init__(
        self,
        cores: float,
        cost: HashCost,
        *,
        max_wait: float = 2.0,
        burst_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cores = cores
        self.cost = cost
        self._max_wait = max_wait
        self._burst = cores * burst_seconds
        self._monotonic = monotonic
        self._balance = self._capacity()
        self._updated = monotonic()

    @property
    def hashes_per_second(self) -> float:
        """The rate of hashes the budget allows at today's estimated cost."""
        return self._cores / self.cost.seconds

    def _capacity(self) -> float:
        # At least one hash, however small the share: a budget must admit something.
        return max(self._burst, self.cost.seconds)

    def reserve(self) -> Reservation:
        """Take one hash's cost from the budget; the reservation says when it may run.

        Raises Busy, taking nothing, when that would be more than `max_wait` from now.
        """
        now = self._monotonic()
        self._balance = min(self._capacity(), self._balance + (now - self._updated) * self._cores)
        self._updated = now
        charge = self.cost.seconds
        balance = self._balance - charge
        wait = 0.0 if balance >= 0 else -balance / self._cores
        if wait > self._max_wait:
            raise Busy(wait)
        self._balance = balance
        return Reservation(charge, now + wait)

    def release(self, reservation: Reservation) -> None:
        """Give back a reservation that will not be used."""
        self._balance = min(self._capacity(), self._balance + reservation.charge)

    def wait(self, reservation: Reservation) -> float:
        """Seconds from now until `reservation` may run (0 if it may now)."""
        return max(0.0, reservation.start_at - self._monotonic())


def _cpu_timed_hash(hasher: PasswordHasher, password: str) -> tuple[str, float]:
    started = time.thread_time()
    encoded = hasher.hash(password)
    return encoded, time.thread_time() - started


def _cpu_timed_verify(hasher: PasswordHasher, encoded: str, password: str) -> tuple[bool, float]:
    started = time.thread_time()
    matched: bool
    try:
        matched = hasher.verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        matched = False
    return matched, time.thread_time() - started


class HashTurn:
    """One reserved hash: use it once with `hash` or `verify`."""

    def __init__(self, passwords: Passwords, reservation: Reservation) -> None:
        self._passwords = passwords
        self._reservation = reservation
        self.used = False

    async def hash(self, password: str) -> str:
        """An encoded argon2id hash of `password`."""
        await self._start()
        encoded, cpu = await asyncio.to_thread(_cpu_timed_hash, self._passwords.hasher, password)
        self._passwords.budget.cost.record(cpu)
        return encoded

    async def verify(self, encoded: str | None, password: str) -> bool:
        """Whether `password` matches `encoded`; None (no account) spends the same work."""
        await self._start()
        matched, cpu = await asyncio.to_thread(
            _cpu_timed_verify, self._passwords.hasher, encoded or self._passwords.decoy, password
        )
        self._passwords.budget.cost.record(cpu)
        return matched and encoded is not None

    async def _start(self) -> None:
        if self.used:
            raise RuntimeError("a hash turn is used once")
        self.used = True
        wait = self._passwords.budget.wait(self._reservation)
        if wait:
            await asyncio.sleep(wait)


class Passwords:
    """Hash and verify passwords within a CPU budget, with equal work for unknown users."""

    def __init__(
        self,
        hasher: PasswordHasher,
        budget: HashBudget,
        *,
        decoy: str,
    ) -> None:
        self.hasher = hasher
        self.budget = budget
        self.decoy = decoy
        """Verified against when the account does not exist, so an unknown email costs
        the same time as a wrong password and reveals nothing."""

    @classmethod
    def calibrated(cls, hasher: PasswordHasher, cores: float, max_wait: float = 2.0) -> Passwords:
        """A budget of `cores` of CPU time, sized from a few hashes on this machine (the
        decoy's among them) and kept up to date by every hash served."""
        cost = HashCost()
        decoy = ""
        for _ in range(_CALIBRATION_SAMPLES):
            decoy, cpu = _cpu_timed_hash(hasher, "decoy password that matches nothing")
            cost.record(cpu)
        return cls(hasher, HashBudget(cores, cost, max_wait=max_wait), decoy=decoy)

    @property
    def hashes_per_second(self) -> float:
        """The budgeted rate of hashes."""
        return self.budget.hashes_per_second

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[HashTurn]:
        """Reserve one hash within the budget; raises Busy if it would wait too long.

        A turn left unused (the block raised before hashing) is given back.
        """
        reservation = self.budget.reserve()
        turn = HashTurn(self, reservation)
        try:
            yield turn
        finally:
            if not turn.used:
                self.budget.release(reservation)

    async def hash(self, password: str) -> str:
        """An encoded argon2id hash of `password`; raises Busy past the budget."""
        async with self.turn() as turn:
            return await turn.hash(password)

    async def verify(self, encoded: str | None, password: str) -> bool:
        """Whether `password` matches `encoded`; None (no account) spends the same work."""
        async with self.turn() as turn:
            return await turn.verify(encoded, password)

    def needs_rehash(self, encoded: str) -> bool:
        """True when `encoded` was made with other parameters than today's."""
        return self.hasher.check_needs_rehash(encoded)
