"""Start-up: `python -m genre_style.train --help` and a config error, against `python -c pass`.

Heavy imports (torch, Lightning, MLflow, librosa) must stay off these paths. Medians of several runs.

python -m benchmarks.bench_startup [--repeat 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from benchmarks.common import REPO, median, report

CASES = {
    "python -c pass": ["-c", "pass"],
    "train --help": ["-m", "genre_style.train", "--help"],
    "train gamma=1.5 (config error)": ["-m", "genre_style.train", "gamma=1.5"],
    "train data.source.root=/nonexistent": ["-m", "genre_style.train", "data.source.root=/nonexistent"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for name, argv in CASES.items():
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True)
            times.append(time.perf_counter() - start)
        rows.append({"case": name, "seconds": median(times)})
    base = rows[0]["seconds"]
    for row in rows:
        row["over_python"] = row["seconds"] - base
    report("startup", rows, ["case", "seconds", "over_python"])


if __name__ == "__main__":
    main()
