"""Server-generated identifiers: time-ordered UUIDv7 in canonical lower-case form.

Time order makes ids usable as the keyset of "creation order" listings.

Generated here rather than by the `uuid6` package, for two reasons found on the write
path. Its uuid7() keeps ids monotonic by adding a millisecond to the timestamp for every
id drawn within the same millisecond, so beyond 1,000 ids a second the timestamps run
ahead of the clock (at a few thousand transfers a second, by seconds per second). And
it reads the OS's random source once per id, a system call that was an eighth of the
ledger's per-transfer CPU time. Here (RFC 9562, section 6.2, method 2) an id in the same
millisecond as the previous one adds a random increment to the previous id's random
bits, and randomness is read from the OS in blocks.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_id"]

_RANDOM_BITS = 74  # rand_a (12 bits) and rand_b (62 bits) together
_RANDOM_LIMIT = 1 << _RANDOM_BITS
_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62
_POOL_BYTES = 4096


class _Uuid7Source:
    """Monotonic UUIDv7 values for one process.

    One per process by design, like the clock it reads: every component of the
    process must draw from the same sequence for ids to stay in creation order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._last_random = 0
        self._pool = b""
        self._offset = 0

    def _random(self, size: int) -> int:
        if self._offset + size > len(self._pool):
            self._pool, self._offset = os.urandom(_POOL_BYTES), 0
        start, self._offset = self._offset, self._offset + size
        return int.from_bytes(self._pool[start : self._offset])

    def next(self) -> int:
        with self._lock:
            now_ms = time.time_ns() // 1_000_000
            if now_ms > self._last_ms:
                # Half the range: room to increment within this millisecond.
                random_bits = self._random(10) >> (80 - _RANDOM_BITS + 1)
            else:
                # Same millisecond, or the clock stepped back: continue after the last.
                now_ms = self._last_ms
                random_bits = self._last_random + 1 + self._random(4)
                if random_bits >= _RANDOM_LIMIT:  # ~2^40 ids in one millisecond
                    now_ms += 1
                    random_bits = self._random(10) >> (80 - _RANDOM_BITS + 1)
            self._last_ms, self._last_random = now_ms, random_bits
        rand_a, rand_b = random_bits >> 62, random_bits & ((1 << 62) - 1)
        return (now_ms & 0xFFFFFFFFFFFF) << 80 | _VERSION | rand_a << 64 | _VARIANT | rand_b


_SOURCE = _Uuid7Source()


def new_id() -> str:
    """A fresh UUIDv7 string, greater than every id this process made before."""
    text = f"{_SOURCE.next():032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
