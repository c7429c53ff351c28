"""A head on a cached frozen musicnn against the MLP DSAE: training epoch time on the same songs, and the one-off cost
of filling the cache (models/pretrained/cache.py).

    python -m benchmarks.bench_frozen_cache [--root ../shared/data/gtzan-dev-3/genres] [--clips-per-track 20]
        [--epochs 5] [--threads 1] [--uncached-batches 2]

Both runs read the same songs, the same number of clips a song starting at the same times (the DSAE the paper's 0.9-s
raw_pool clips at 22.05 kHz, musicnn its 3-s 16-kHz log-mel patches at the DSAE's hop) and the same track split, as `python -m genre_style.train` builds
them (`compose`): `model=dsae encoder=mlp` (the default) and `model=two_layer encoder=musicnn features=musicnn_mel`
(freeze: all, its penultimate layer, cache: auto). The cache is filled into a fresh folder (`--cache-dir`, default a
temporary one): the one-off cost, in seconds and clips per second; then filled again (reused: nothing computed).
Epoch time: the median of `--epochs` training epochs after the first (validation not counted), one process, `--threads`
torch threads. `--uncached-batches` times that many training steps of the same musicnn model without the cache
(`cache: false`: the backbone runs at every step), as seconds per clip, for scale. Figures: docs/pretrained.md.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, compose, median, report

MUSICNN = ["model=two_layer", "encoder=musicnn", "features=musicnn_mel"]
DSAE = ["model=dsae", "encoder=mlp"]
MLP_HEAD = ["model=two_layer", "encoder=mlp"]  # the same objective as the musicnn head, on raw_pool clips


class EpochTimer:
    """Seconds of each training epoch (Lightning's train-epoch hooks: validation is not counted)."""

    def __init__(self) -> None:
        import lightning.pytorch as pl

        class Timer(pl.Callback):
            def __init__(self) -> None:
                self.seconds: list[float] = []
                self._start = 0.0

            def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
                self._start = time.perf_counter()

            def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
                self.seconds.append(time.perf_counter() - self._start)

        self.callback = Timer()


def built(overrides: list[str], root: str, clips: int, cache_dir: str) -> tuple[Any, Any]:
    """(datamodule set up, model) as `python -m genre_style.train <overrides>` builds them."""
    from hydra.utils import instantiate

    cfg = compose(
        [
            *overrides,
            f"data.source.root={root}",
            "data.source.genres=all",
            f"data.clips.clips_per_track={clips}",
            f"paths.cache_dir={cache_dir}",
        ]
    )
    cfg.data.progress = False
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = instantiate(
        cfg.model,
        input_shape=datamodule.input_shape,
        input_kind=datamodule.input_kind,
        num_classes=datamodule.num_classes,
        class_names=datamodule.class_names,
    )
    return datamodule, model


def epoch_seconds(model: Any, datamodule: Any, epochs: int, batches: int | None = None) -> list[float]:
    import lightning.pytorch as pl

    timer = EpochTimer().callback
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        limit_train_batches=batches or 1.0,
        callbacks=[timer],
    )
    trainer.fit(model, datamodule=datamodule)
    return timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "gtzan-dev-3" / "genres"))
    parser.add_argument("--clips-per-track", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--uncached-batches", type=int, default=2)
    parser.add_argument("--cache-dir", help="the frozen cache's folder (default: a fresh temporary one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import torch

    from genre_style.data import front_ends
    from genre_style.models.pretrained.cache import serve_cached_features

    torch.set_num_threads(args.threads)
    clip_cache = str(REPO / "outputs" / "cache")  # the clip tables, shared with training (preprocessing is not timed)
    with tempfile.TemporaryDirectory() as scratch:
        frozen_dir = Path(args.cache_dir or scratch)
        rows = []

        dm, dsae = built(DSAE, args.root, args.clips_per_track, clip_cache)
        dsae_epochs = epoch_seconds(dsae, dm, args.epochs)
        train_clips = len(dm.indices["train"])
        rows.append({"run": "model=dsae encoder=mlp (raw_pool)", "train clips": train_clips, "epoch s": median(dsae_epochs[1:])})

        dm, mlp = built(MLP_HEAD, args.root, args.clips_per_track, clip_cache)
        mlp_epochs = epoch_seconds(mlp, dm, args.epochs)
        rows.append(
            {
                "run": "model=two_layer encoder=mlp (raw_pool)",
                "train clips": len(dm.indices["train"]),
                "epoch s": median(mlp_epochs[1:]),
                "vs dsae": median(mlp_epochs[1:]) / median(dsae_epochs[1:]),
            }
        )

        # musicnn's 3-s patches start where the DSAE's 0.9-s clips do (their hop in seconds): the same number a song
        hop = round(dm.spec.hop_samples * front_ends.MUSICNN_RATE / dm.spec.sample_rate)
        musicnn = [*MUSICNN, f"data.clips.hop_samples={hop}"]
        dm, head = built(musicnn, args.root, args.clips_per_track, clip_cache)
        fill = serve_cached_features(head, dm, frozen_dir)
        assert fill is not None and fill.computed == len(dm.table)
        again = serve_cached_features(head, dm, frozen_dir)  # a second run: reused
        assert again is not None and again.computed == 0
        head_epochs = epoch_seconds(head, dm, args.epochs)
        rows.append(
            {
                "run": "model=two_layer encoder=musicnn, cached",
                "train clips": len(dm.indices["train"]),
                "epoch s": median(head_epochs[1:]),
                "vs dsae": median(head_epochs[1:]) / median(dsae_epochs[1:]),
                "fill s": fill.seconds,
                "fill clips/s": fill.computed / fill.seconds,
                "reuse s": again.seconds,
            }
        )
        if args.uncached_batches:
            uncached = [*musicnn, "model.encoder.cache=false", "data.loader.minibatches_per_step=1"]  # a step: 64 clips
            dm, slow = built(uncached, args.root, args.clips_per_track, clip_cache)
            steps = epoch_seconds(slow, dm, 2, args.uncached_batches)  # the first epoch warms up
            clips = args.uncached_batches * dm.batch_size * dm.minibatches_per_step
            rows.append(
                {
                    "run": "model=two_layer encoder=musicnn, cache=false",
                    "train clips": f"{min(clips, len(dm.indices['train']))} timed",
                    "s per clip": steps[-1] / min(clips, len(dm.indices["train"])),
                }
            )
    report(
        f"frozen musicnn cache ({args.root}, {args.clips_per_track} clips a song, {args.threads} thread(s))",
        rows,
        ["run", "train clips", "epoch s", "vs dsae", "fill s", "fill clips/s", "reuse s", "s per clip"],
    )


if __name__ == "__main__":
    main()
