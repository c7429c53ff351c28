"""Which on-disk feature store: each candidate writes the same clips in shards, then serves one shuffled epoch of
64-clip batches; one JSON line per candidate with write time, read clips/s and the reader's peak RSS.

    python -m benchmarks.bench_store --clips 50000           # log-mel maps 64 x 79, float32 (20 KB a clip)
    PYTHONPATH=/path/to/litdata python -m benchmarks.bench_store --candidates litdata

Each candidate runs in a process of its own (peak RSS is the process's); the page cache is warm for all (each reads
what it just wrote), so the figures compare the libraries' read paths, not the disk. Candidates: `memory` (today's
in-memory tensor, the bar), `npy-mmap` (numpy .npy shards, memory-mapped, a batch by fancy indexing), `npy-pread`
(the same shards, a batch's rows read with os.preadv into one buffer: no mapping, so pages never count as RSS),
`litdata` (Lightning's optimize + StreamingDataset, random access by index), `litdata-stream` (the same, iterated
through its StreamingDataLoader with its chunk-wise shuffle).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (64, 79)
SHARD_CLIPS = 1024
BATCH = 64


def _clips(n: int, start: int = 0) -> np.ndarray:
    rng = np.random.default_rng(start)
    return rng.standard_normal((n, *SHAPE), dtype=np.float32)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _order(n: int) -> list[np.ndarray]:
    return np.array_split(np.random.default_rng(0).permutation(n), max(1, n // BATCH))


def run_memory(n: int, folder: Path) -> tuple[float, float]:
    import torch

    t0 = time.perf_counter()
    x = torch.from_numpy(np.concatenate([_clips(min(SHARD_CLIPS, n - s), s) for s in range(0, n, SHARD_CLIPS)]))
    write = time.perf_counter() - t0
    t0 = time.perf_counter()
    for batch in _order(n):
        x.index_select(0, torch.from_numpy(batch)).sum()
    return write, time.perf_counter() - t0


def _write_npy(n: int, folder: Path) -> list[Path]:
    paths = []
    for i, start in enumerate(range(0, n, SHARD_CLIPS)):
        path = folder / f"shard-{i:05d}.npy"
        np.save(path, _clips(min(SHARD_CLIPS, n - start), start))
        paths.append(path)
    return paths


def run_npy_mmap(n: int, folder: Path) -> tuple[float, float]:
    t0 = time.perf_counter()
    paths = _write_npy(n, folder)
    write = time.perf_counter() - t0
    shards = [np.load(p, mmap_mode="r") for p in paths]
    t0 = time.perf_counter()
    for batch in _order(n):
        batch = np.sort(batch)
        parts = [shards[s][batch[batch // SHARD_CLIPS == s] % SHARD_CLIPS] for s in np.unique(batch // SHARD_CLIPS)]
        np.concatenate(parts).sum()
    return write, time.perf_counter() - t0


def run_npy_pread(n: int, folder: Path) -> tuple[float, float]:
    t0 = time.perf_counter()
    paths = _write_npy(n, folder)
    write = time.perf_counter() - t0
    offsets = [np.load(p, mmap_mode="r").offset for p in paths]
    fds = [os.open(p, os.O_RDONLY) for p in paths]
    row = int(np.prod(SHAPE)) * 4
    t0 = time.perf_counter()
    for batch in _order(n):
        batch = np.sort(batch)
        out = np.empty((len(batch), *SHAPE), dtype=np.float32)
        view = memoryview(out).cast("B")
        for j, clip in enumerate(batch):
            shard, k = divmod(int(clip), SHARD_CLIPS)
            os.preadv(fds[shard], [view[j * row : (j + 1) * row]], offsets[shard] + k * row)
        out.sum()
    return write, time.perf_counter() - t0


def _litdata_item(start: int) -> np.ndarray:
    return _clips(1, start)[0]


def run_litdata(n: int, folder: Path) -> tuple[float, float]:
    from litdata import StreamingDataset, optimize

    t0 = time.perf_counter()
    optimize(fn=_litdata_item, inputs=list(range(n)), output_dir=str(folder / "ld"), chunk_bytes="20MB", num_workers=1)
    write = time.perf_counter() - t0
    dataset = StreamingDataset(str(folder / "ld"))
    t0 = time.perf_counter()
    for batch in _order(n):
        np.stack([dataset[int(i)] for i in batch]).sum()
    return write, time.perf_counter() - t0


def run_litdata_stream(n: int, folder: Path) -> tuple[float, float]:
    """litdata as it is meant to be read: iterated, shuffled chunk by chunk (not a global shuffle)."""
    from litdata import StreamingDataLoader, StreamingDataset, optimize

    t0 = time.perf_counter()
    optimize(fn=_litdata_item, inputs=list(range(n)), output_dir=str(folder / "ld"), chunk_bytes="20MB", num_workers=1)
    write = time.perf_counter() - t0
    loader = StreamingDataLoader(StreamingDataset(str(folder / "ld"), shuffle=True, seed=0), batch_size=BATCH)
    t0 = time.perf_counter()
    for batch in loader:
        batch.sum()
    return write, time.perf_counter() - t0


CANDIDATES = {
    "memory": run_memory,
    "npy-mmap": run_npy_mmap,
    "npy-pread": run_npy_pread,
    "litdata": run_litdata,
    "litdata-stream": run_litdata_stream,
}


def child(name: str, n: int) -> None:
    import torch  # noqa: F401 - every candidate's process holds torch, as a training does: RSS on the same base

    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        base = _rss_mb()
        write, read = CANDIDATES[name](n, Path(tmp))
        print(
            json.dumps(
                {
                    "candidate": name,
                    "clips": n,
                    "data_mb": round(n * int(np.prod(SHAPE)) * 4 / 2**20),
                    "write_s": round(write, 2),
                    "read_clips_per_s": round(n / read),
                    "peak_rss_mb": round(_rss_mb()),
                    "rss_over_start_mb": round(_rss_mb() - base),
                }
            ),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=50_000)
    parser.add_argument("--candidates", nargs="*", default=list(CANDIDATES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.clips)
        return
    for name in args.candidates:
        command = [sys.executable, "-m", "benchmarks.bench_store", "--child", name, "--clips", str(args.clips)]
        result = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        error = (result.stderr.strip().splitlines() or ["no output"])[-1]
        if "No module named 'litdata'" in error:
            error = "litdata is not installed: pip install litdata (or PYTHONPATH=<a folder with it>) to measure it"
        print(lines[-1] if lines else json.dumps({"candidate": name, "error": error}))


if __name__ == "__main__":
    main()
