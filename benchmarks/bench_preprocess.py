"""Preprocessing: a GTZAN-sized corpus (400 tracks x 30 s at 22,050 Hz) from WAV files to pooled, split arrays.

Measures, each in a fresh process and after its imports: cold with 1 worker and with every core, warm (cache hit), and the
floor: a minimal loop that reads the same files with soundfile and pools with numpy; then the time-frequency
front-end (`features=logmel`, 64 x 79 maps per clip) cold with 1 worker and with every core, each against the raw
front-end with as many workers. Every file is read once before any
timing, so no case pays the disk while another hits the OS page cache. Peak memory is the largest resident
set of the main process plus that of its largest worker.
Goals: cold (1 worker) <= 1.5x the floor, warm <= 0.5 s, peak memory < 1 GB; log-mel cold <= 2x raw cold, < 2 GB.

python -m benchmarks.bench_preprocess [--corpus outputs/bench/gtzan-sized]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import REPO, report

GENRES = ["classical", "jazz", "pop", "metal"]

OURS = """
import json, resource, sys, time
from genre_style.data.datamodule import GenreDataModule
t0 = time.perf_counter()  # after the imports: the work itself
logmel = sys.argv[4] == "logmel"
dm = GenreDataModule(
    source={"root": sys.argv[1]},
    clips=dict(features="logmel", n_fft=1024, frame_hop=256, n_mels=64) if logmel else None,
    loader={"standardize": logmel},
    store={"cache_dir": sys.argv[2], "workers": int(sys.argv[3])},
    progress=False,
)
dm.prepare_data(); dm.setup("fit")
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "clips": sum(len(t[0]) for t in dm.tensors.values()),
                  "cache_hit": dm.cache_hit}))
"""

FLOOR = """
import json, resource, sys, time
from pathlib import Path
import numpy as np, soundfile as sf
t0 = time.perf_counter()
rows = []
for genre in ["classical", "jazz", "pop", "metal"]:
    for path in sorted((Path(sys.argv[1]) / genre).glob("*.wav")):
        signal, rate = sf.read(path, dtype="float32")
        n = min(20, len(signal) // 20000)
        rows.append(signal[: n * 20000].reshape(n, 500, 40).mean(axis=2))
features = np.concatenate(rows)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "clips": len(features)}))
"""


def _run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO / "outputs" / "bench" / "gtzan-sized")
    args = parser.parse_args()
    from genre_style.data.synthetic import SyntheticSpec, generate_corpus

    print(f"corpus: {args.corpus} (written once: 400 tracks x 30 s)", flush=True)
    generate_corpus(args.corpus, SyntheticSpec(tracks_per_genre=100, seconds=30.0), progress=True)
    cores = os.cpu_count() or 1
    read_once(args.corpus)
    floor = _run(FLOOR, str(args.corpus))
    with (
        tempfile.TemporaryDirectory() as one,
        tempfile.TemporaryDirectory() as many,
        tempfile.TemporaryDirectory() as mel,
        tempfile.TemporaryDirectory() as mel_n,
    ):
        cold_1 = _run(OURS, str(args.corpus), one, "1", "raw_pool")
        cold_n = _run(OURS, str(args.corpus), many, str(cores), "raw_pool")
        warm = _run(OURS, str(args.corpus), many, str(cores), "raw_pool")
        logmel = _run(OURS, str(args.corpus), mel, "1", "logmel")
        logmel_n = _run(OURS, str(args.corpus), mel_n, str(cores), "logmel")
    rows = [
        {
            "case": "floor (soundfile + numpy, 1 process)",
            "seconds": floor["seconds"],
            "peak_mb": floor["peak_mb"],
            "clips": floor["clips"],
        },
        {
            "case": "cold, 1 worker",
            "seconds": cold_1["seconds"],
            "peak_mb": cold_1["peak_mb"],
            "clips": cold_1["clips"],
            "vs_floor": cold_1["seconds"] / floor["seconds"],
            "goal": "<= 1.5x floor, < 1024 MB",
        },
        {
            "case": f"cold, {cores} workers",
            "seconds": cold_n["seconds"],
            "peak_mb": cold_n["peak_mb"],
            "clips": cold_n["clips"],
            "vs_floor": cold_n["seconds"] / floor["seconds"],
            "goal": "< 1024 MB",
        },
        {
            "case": "warm (cache hit)",
            "seconds": warm["seconds"],
            "peak_mb": warm["peak_mb"],
            "clips": warm["clips"],
            "goal": "<= 0.5 s",
        },
        {
            "case": "log-mel maps, cold, 1 worker",
            "seconds": logmel["seconds"],
            "peak_mb": logmel["peak_mb"],
            "clips": logmel["clips"],
            "vs_floor": logmel["seconds"] / floor["seconds"],
            "vs_raw_cold": logmel["seconds"] / cold_1["seconds"],
            "goal": "<= 2x raw cold, < 2048 MB",
        },
        {
            "case": f"log-mel maps, cold, {cores} workers",
            "seconds": logmel_n["seconds"],
            "peak_mb": logmel_n["peak_mb"],
            "clips": logmel_n["clips"],
            "vs_floor": logmel_n["seconds"] / floor["seconds"],
            "vs_raw_cold": logmel_n["seconds"] / cold_n["seconds"],
            "goal": f"<= 2x raw cold ({cores} workers), < 2048 MB",
        },
    ]
    report("preprocess", rows, ["case", "seconds", "vs_floor", "vs_raw_cold", "peak_mb", "clips", "goal"])


def read_once(corpus: Path) -> None:
    """Read every file once, so every case below finds the corpus in the OS page cache (none pays the disk)."""
    for path in sorted(corpus.rglob("*.wav")):
        path.read_bytes()


if __name__ == "__main__":
    main()
