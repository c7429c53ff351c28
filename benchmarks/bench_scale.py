"""Memory and speed as the collection grows: synthetic corpora of 1,000, 5,000 and 20,000 songs through the disk store
(and, for the bar, the in-memory path), one JSON line per measurement.

    python -m benchmarks.bench_scale --work /tmp/scale                    # 1000 5000 20000 songs
    python -m benchmarks.bench_scale --work /tmp/scale --songs 1000 --steps 100

Songs are the built-in synthetic genres, 3 s each (3 clips of `experiment=best`'s 64 x 79 log-mel maps, 60 KB of
features a song), written once under --work (outside the repo: 20,000 songs are 2.6 GB of WAV, 1.2 GB of features).
Every measurement runs in a process of its own, so `peak_rss_mb` is that process's peak:
- `preprocess`: the store built from the audio (its `seconds`, its peak RSS);
- `train`: `experiment=best`'s model and data module (`data.store.mode=disk` or `memory`) fitted for --steps optimiser
  steps with no validation; `clips_per_s` over the steps after the first 10, `peak_rss_mb` at the end of the fit;
- `embed`: the fitted model embedding 50 of the corpus's songs from their audio files (`clips_per_s`).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SECONDS = 3.0
GENRES = ("classical", "jazz", "pop", "metal")
WARMUP_STEPS = 10


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def corpus(work: Path, songs: int) -> Path:
    from genre_style.data.synthetic import SyntheticSpec, generate_corpus

    spec = SyntheticSpec(genres=GENRES, tracks_per_genre=songs // len(GENRES), seconds=SECONDS, seed=0)
    return generate_corpus(work / f"corpus-{songs}", spec, progress=False)


def _config(root: Path, cache: Path, store: str) -> Any:
    from benchmarks.common import compose

    return compose(
        [
            "experiment=best",
            f"data.source.root={root}",
            "data.source.genres=all",
            f"data.store.cache_dir={cache}",
            f"data.store.mode={store}",
            "data.progress=false",
        ]
    )


def preprocess(root: Path, cache: Path) -> dict[str, Any]:
    from hydra.utils import instantiate

    cfg = _config(root, cache, "disk")
    t0 = time.perf_counter()
    dm = instantiate(cfg.data)
    dm.prepare_data()
    return {"seconds": round(time.perf_counter() - t0, 1), "clips": len(dm.store), "store": str(dm.store.folder)}


class _StepTimer:
    """Times the optimiser steps after the warm-up (a Lightning callback built lazily: no Lightning at import)."""

    def __new__(cls) -> Any:
        import lightning.pytorch as pl

        class Timer(pl.Callback):
            def __init__(self) -> None:
                self.start: float | None = None
                self.steps = 0

            def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
                if trainer.global_step == WARMUP_STEPS:
                    self.start = time.perf_counter()

            def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
                if self.start is not None:
                    self.steps += 1

        return Timer()


def train(root: Path, cache: Path, store: str, steps: int, checkpoint: Path | None) -> dict[str, Any]:
    import lightning.pytorch as pl
    from hydra.utils import instantiate

    from genre_style.callbacks.acceleration import Acceleration

    cfg = _config(root, cache, store)
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    model = instantiate(cfg.model, input_shape=dm.input_shape, num_classes=dm.num_classes, class_names=dm.class_names)
    timer = _StepTimer()
    trainer = pl.Trainer(
        max_steps=steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Acceleration(), timer],
    )
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - timer.start
    if checkpoint is not None:
        trainer.save_checkpoint(checkpoint)
    return {"clips_per_s": round(timer.steps * cfg.batch_size / seconds, 1), "clips": len(dm.table)}


def embed(root: Path, checkpoint: Path) -> dict[str, Any]:
    from genre_style.data.corpus import discover_tracks
    from genre_style.inference import Embedder

    embedder = Embedder.from_checkpoint(checkpoint)
    files = [t.path for t in discover_tracks(root, list(GENRES))][::-1][:50]
    embedder.embed_file(files[0])  # warm-up
    t0 = time.perf_counter()
    clips = sum(len(embedder.embed_file(path).embeddings) for path in files)
    return {"clips_per_s": round(clips / (time.perf_counter() - t0), 1), "songs_embedded": len(files)}


def child(args: argparse.Namespace) -> None:
    root, cache = Path(args.root), Path(args.cache)
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    if args.child == "preprocess":
        row = preprocess(root, cache)
    elif args.child == "embed":
        row = embed(root, Path(args.checkpoint))
    else:
        row = train(root, cache, args.child.split(":")[1], args.steps, checkpoint)
    print(json.dumps({**row, "peak_rss_mb": round(_peak_rss_mb())}), flush=True)


def _run(kind: str, root: Path, cache: Path, steps: int, checkpoint: Path | None = None) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_scale", "--child", kind, "--root", str(root), "--cache", str(cache)]
    command += ["--steps", str(steps)] + (["--checkpoint", str(checkpoint)] if checkpoint else [])
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": (result.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/genre-style-scale"), help="corpora and stores (large)")
    parser.add_argument("--songs", type=int, nargs="*", default=[1000, 5000, 20000])
    parser.add_argument("--steps", type=int, default=110, help="optimiser steps a training measurement (110)")
    parser.add_argument("--memory", action="store_true", help="also train from memory at every size (default: smallest)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    for songs in sorted(args.songs):
        t0 = time.perf_counter()
        root = corpus(args.work, songs)
        cache = args.work / f"cache-{songs}"
        base = {"songs": songs, "corpus_s": round(time.perf_counter() - t0, 1)}
        print(json.dumps({**base, "measure": "preprocess", **_run("preprocess", root, cache, 1)}), flush=True)
        checkpoint = args.work / f"model-{songs}.ckpt"
        stores = ["disk", "memory"] if args.memory or songs == min(args.songs) else ["disk"]
        for store in stores:
            row = _run(f"train:{store}", root, cache, args.steps, checkpoint if store == "disk" else None)
            print(json.dumps({**base, "measure": "train", "store": store, **row}), flush=True)
        print(json.dumps({**base, "measure": "embed", **_run("embed", root, cache, 1, checkpoint)}), flush=True)


if __name__ == "__main__":
    main()
