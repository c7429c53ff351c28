"""End to end: wall time of `make demo` after set-up (the built-in corpus and its cache already there).

python -m benchmarks.bench_e2e
"""

from __future__ import annotations

import subprocess
import time

from benchmarks.common import REPO, report


def main() -> None:
    subprocess.run(["make", "install"], cwd=REPO, check=True, capture_output=True)
    subprocess.run(
        ["make", "demo", "ARGS=trainer.max_epochs=1 logger=none"], cwd=REPO, check=True, capture_output=True
    )  # corpus + cache
    start = time.perf_counter()
    subprocess.run(["make", "demo", "ARGS=trainer.enable_progress_bar=false"], cwd=REPO, check=True, capture_output=True)
    report("end_to_end", [{"case": "make demo (warm cache)", "seconds": time.perf_counter() - start}], ["case", "seconds"])


if __name__ == "__main__":
    main()
