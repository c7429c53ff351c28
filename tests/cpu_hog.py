"""A CPU hog for checks that two runs agree: busy processes on every core, bounded in time, stopped on exit."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

# Spins for at most `limit` seconds, so a hog outlives nothing even if its owner is killed.
_SPIN = "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end:\n    pass\n"


@contextmanager
def cpu_hog(processes: int | None = None, limit_s: float = 600.0) -> Iterator[None]:
    """One busy Python process per core (or `processes`) while the block runs."""
    count = processes or os.cpu_count() or 2
    hogs = [subprocess.Popen([sys.executable, "-c", _SPIN, str(limit_s)]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
