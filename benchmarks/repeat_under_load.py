"""Proof under load: the bit-exact tests, run again and again beside a CPU hog, with pytest's two workers as CI runs them.

Each round starts one busy process per core, then runs the tests that compare two runs to the bit (exact resume after
SIGTERM, SIGINT and SIGKILL, the weight average's resume, a sweep's resume, the same command twice) and counts the
rounds that pass. Prints a table and one JSON line like the other benchmarks.

python -m benchmarks.repeat_under_load [--rounds 10] [--no-hog] [-k EXPR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from benchmarks.common import REPO, report
from tests.cpu_hog import cpu_hog

BIT_EXACT = [
    "tests/system/test_preemption.py::test_an_interrupted_run_resumes_to_the_uninterrupted_result",
    "tests/unit/callbacks/test_weight_average.py::test_a_resumed_fit_ends_with_the_average_an_uninterrupted_one_has",
    "tests/system/test_sweeps.py::test_a_sweep_runs_its_trials_tracks_them_and_resumes_to_the_total",
    "tests/system/test_reproducibility.py::test_the_same_command_twice_gives_the_same_bits_even_beside_a_cpu_hog",
    "tests/unit/models/test_training_loop.py",
]


def one_round(tests: list[str], hog: bool, select: str | None) -> tuple[bool, float, str]:
    """pytest on `tests` with two workers (the project's addopts), beside a hog when asked; (passed, seconds, summary)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, *(["-k", select] if select else [])]
    start = time.perf_counter()
    if hog:
        with cpu_hog():
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    else:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return done.returncode == 0, time.perf_counter() - start, lines[-1] if lines else done.stderr[-300:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-hog", action="store_true", help="run without the CPU hog")
    parser.add_argument("-k", dest="select", default=None, help="pytest -k expression to run a subset")
    args = parser.parse_args()
    rows = []
    for number in range(1, args.rounds + 1):
        passed, seconds, summary = one_round(BIT_EXACT, hog=not args.no_hog, select=args.select)
        rows.append({"round": number, "hog": not args.no_hog, "passed": passed, "seconds": round(seconds, 1), "pytest": summary})
        print(f"round {number}: {'pass' if passed else 'FAIL'} in {seconds:.0f} s: {summary}", flush=True)
    passes = sum(row["passed"] for row in rows)
    report(
        "repeat_under_load",
        [{"rounds": len(rows), "passed": passes, "hog": not args.no_hog, "goal": f"{len(rows)} of {len(rows)}"}],
        ["rounds", "passed", "hog", "goal"],
    )


if __name__ == "__main__":
    main()
