"""freeze_start_up_heap, in a child interpreter: a freeze lasts as long as the process,
and in the test process it would keep every other test's garbage alive."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Builds a server's worth of long-lived objects, leaves a cycle as garbage, freezes,
# then makes a new cycle and reports what the collector still sees and frees.
_CHILD = textwrap.dedent(
    """
    import gc, json, weakref

    import services.catalogue.server  # noqa: F401 - the heap a real service starts with
    from services.runtime.heap import freeze_start_up_heap

    class Node:
        pass

    def cycle():
        node = Node()
        node.self = node
        return weakref.ref(node)

    gc.disable()  # nothing is collected behind the test's back
    left_over = cycle()
    tracked_before = len(gc.get_objects())
    frozen = freeze_start_up_heap()
    left_over_freed = left_over() is None
    tracked_after = len(gc.get_objects())
    made_later = cycle()
    gc.collect()
    print(json.dumps({
        "tracked_before": tracked_before,
        "frozen": frozen,
        "tracked_after": tracked_after,
        "left_over_freed": left_over_freed,
        "made_later_freed": made_later() is None,
    }))
    """
)


def _run_child() -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_later_collections_skip_the_start_up_heap_but_still_free_new_garbage() -> None:
    seen = _run_child()
    tracked_before, frozen, tracked_after = (
        seen["tracked_before"],
        seen["frozen"],
        seen["tracked_after"],
    )
    assert isinstance(tracked_before, int)
    assert isinstance(frozen, int)
    assert isinstance(tracked_after, int)
    # A service's start-up heap is large; a full collection now walks almost none of it.
    assert tracked_before > 50_000
    assert frozen > 0.9 * tracked_before
    assert tracked_after < 0.01 * tracked_before
    # Garbage start-up left is freed first, not kept forever; garbage made later is freed.
    assert seen["left_over_freed"] is True
    assert seen["made_later_freed"] is True
