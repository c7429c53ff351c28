"""Heavy imports run with the collector paused and end frozen; a sweep's next trial frees, not freezes, garbage."""

from __future__ import annotations

import gc
import weakref

from genre_style.gc_imports import imports_without_gc


class Node:
    pass


def test_imports_pause_the_collector_then_freeze_and_a_second_call_frees_garbage_first():
    frozen_before = gc.get_freeze_count()
    try:
        with imports_without_gc():
            assert not gc.isenabled()
            kept = [Node() for _ in range(100)]
        assert gc.isenabled() and gc.get_freeze_count() >= frozen_before + len(kept)
        cycle = Node()
        cycle.me = cycle  # garbage only the cyclic collector can free, as a finished trial's Trainer leaves
        alive = weakref.ref(cycle)
        del cycle
        with imports_without_gc():
            pass
        assert alive() is None
    finally:
        gc.unfreeze()  # leave this test process as it was
