"""Heavy imports with the cyclic garbage collector paused, then frozen out of its sight.

Importing torch, Lightning, MLflow, scikit-learn and matplotlib creates ~700k objects that live as long
as the process. Each full collection walks every one of them: 8 ran during the imports of one training
run here, ~1 s of a 20-s `make demo`, and the collection at exit took another 0.3 s. Nothing an import
creates is garbage worth finding, so none runs while they load, and `gc.freeze()` then moves what exists
into the permanent generation, which later collections (and the one at exit) skip. Objects freed by
reference counting are freed as before; only cyclic garbage among the frozen objects would stay.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def imports_without_gc() -> Iterator[None]:
    """Pause the collector for the imports inside, then freeze every object that exists.

    Called again in the same process (a sweep's next trial), it first collects what is not frozen yet
    (cheap: the imports are frozen), so the previous trial's garbage is freed, not frozen with the rest.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count():
            gc.collect()
        gc.freeze()
        if was_enabled:
            gc.enable()
