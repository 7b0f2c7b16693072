"""Keeping the cyclic garbage collector off the objects a server builds to start.

A started service holds ~120k objects that live as long as the process: modules,
SQLAlchemy metadata, protobuf descriptors, compiled statements. Every full collection
walked all of them again. Measured on the catalogue under load (concurrency 32), that
was a 40-50 ms pause of the event loop every few seconds and ~2% of its time; with the
start-up heap frozen, collections took under 0.8% and GetProduct served 5-6% more calls
with its slowest call 24 ms instead of 30 ms.

Frozen objects are never collected, so this runs once a server has started, after
one full collection, and only in a server's own process: in a test process it would
keep every earlier test's garbage alive.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_start_up_heap"]


def freeze_start_up_heap() -> int:
    """Collect what start-up left behind, then exempt every object still alive from all
    later collections; returns how many objects are now frozen. Objects created later are
    collected as usual."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
