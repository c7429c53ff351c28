"""Seconds per epoch: the project's training path against a bare PyTorch loop doing the same work.

The project's path is what `python -m genre_style.train` runs: its config, DataModule, LightningModule,
callbacks (checkpointing, early stopping, history), Trainer settings and MLflow logging. The floor is a
plain loop over the same in-memory tensors with the same model, optimiser and batch size, with the
same validation pass each epoch. Both run in this process, one bare epoch right before each project
epoch, and the medians of per-epoch times after a warm-up are compared. Goal: ratio <= 1.10.

python -m benchmarks.bench_train [--epochs 6] [--rounds 3] [--batch-sizes 64 256] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from typing import Any

import torch

from benchmarks.common import clip_table, compose, median, report


class BareLoop:
    """The floor: a plain PyTorch loop over the same in-memory tensors, same model, optimiser and batch size,
    with the same validation pass (one forward of the val split, loss and accuracy) each epoch."""

    def __init__(self, batch_size: int, device: str) -> None:
        from hydra.utils import instantiate

        from genre_style.data.datamodule import GenreDataModule

        cfg = compose([f"batch_size={batch_size}", "data.split=segment", "data.split_sizes=[6000,1000,1000]"])
        dm = GenreDataModule.from_table(clip_table(), batch_size=batch_size, split="segment",
                                        split_sizes=[6000, 1000, 1000], seed=cfg.seed)
        dm.setup("fit")
        self.model = instantiate(cfg.model, input_dim=dm.input_dim, num_classes=dm.num_classes,
                                 class_names=dm.class_names).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.x_train, self.y_train, _ = (t.to(device) for t in dm.tensors["train"])
        self.x_val, self.y_val, _ = (t.to(device) for t in dm.tensors["val"])
        self.batch_size, self.device = batch_size, device

    def epoch(self) -> float:
        model, start = self.model, time.perf_counter()
        model.train()
        order = torch.randperm(len(self.x_train), device=self.device)
        for i in range(0, len(order), self.batch_size):
            idx = order[i : i + self.batch_size]
            x, y = self.x_train[idx], self.y_train[idx]
            loss = model.compute_losses(model(x), x, y)["loss"]
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        model.eval()
        with torch.no_grad():
            out = model(self.x_val)
            model.compute_losses(out, self.x_val, self.y_val)
            float((out.logits.argmax(1) == self.y_val).float().mean())
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def paired_timer(bare: BareLoop) -> Any:
    """A callback that runs one bare epoch at the start of each project epoch and times both, so each
    project epoch has a floor measured right next to it: this machine's speed drifts by tens of per cent
    within minutes, which unpaired runs mistake for overhead."""
    import lightning.pytorch as pl

    class PairedTimer(pl.Callback):
        def __init__(self) -> None:
            self.pairs: list[tuple[float, float]] = []  # (project epoch, bare epoch next to it)
            self._started: float | None = None
            self._bare: float | None = None

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            now = time.perf_counter()
            if self._started is not None:
                self.pairs.append((now - self._started, self._bare))
            self._bare = bare.epoch()
            self._started = time.perf_counter()

    return PairedTimer()


def project_pairs(batch_size: int, epochs: int, store: str, device: str, bare: BareLoop) -> list[tuple[float, float]]:
    """Project epochs (each from one epoch start to the next: training, validation, logging, checkpointing),
    each paired with a bare epoch run just before it."""
    from hydra.utils import instantiate

    from genre_style.data.datamodule import GenreDataModule
    from genre_style.tracking.history import MetricHistory

    cfg = compose([f"batch_size={batch_size}", f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=true",
                   f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}", "data.split=segment",
                   "data.split_sizes=[6000,1000,1000]", f"callbacks.model_checkpoint.dirpath={store}/ckpt",
                   f"callbacks.last_checkpoint.dirpath={store}/ckpt",
                   f"logger.mlflow.default_store_dir={store}", "callbacks.early_stopping.patience=1000",
                   f"trainer.default_root_dir={store}"])
    dm = GenreDataModule.from_table(clip_table(), **{k: v for k, v in cfg.data.items() if k in (
        "batch_size", "minibatches_per_step", "eval_batch_size", "split", "split_sizes", "seed", "balance", "standardize")})
    dm.setup("fit")
    model = instantiate(cfg.model, input_dim=dm.input_dim, num_classes=dm.num_classes, class_names=dm.class_names)
    logger = instantiate(cfg.logger.mlflow)
    timer = paired_timer(bare)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()] + [MetricHistory(), timer]
    trainer = instantiate({k: v for k, v in cfg.trainer.items() if k != "default_root_dir"}, callbacks=callbacks,
                          logger=logger, default_root_dir=store)
    trainer.fit(model, datamodule=dm)
    return timer.pairs[1:]  # the first epoch is warm-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="epochs per round; the first of each round is warm-up")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    rows = []
    store = tempfile.mkdtemp(prefix="bench-train-")  # one MLflow store: MLflow caches its engine per URI
    for batch_size in args.batch_sizes:
        bare = BareLoop(batch_size, args.device)
        pairs = []
        for _ in range(args.rounds):
            pairs += project_pairs(batch_size, args.epochs, store, args.device, bare)
        ours, floor = median([p for p, _ in pairs]), median([b for _, b in pairs])
        rows.append({"device": args.device, "batch_size": batch_size, "project_s_per_epoch": ours,
                     "bare_s_per_epoch": floor, "ratio": ours / floor,
                     "median_pair_ratio": median([p / b for p, b in pairs]), "pairs": len(pairs), "goal": "<= 1.10"})
    report("train", rows, ["device", "batch_size", "project_s_per_epoch", "bare_s_per_epoch", "ratio",
                           "median_pair_ratio", "pairs", "goal"])


if __name__ == "__main__":
    main()
