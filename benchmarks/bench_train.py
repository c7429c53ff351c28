"""Seconds per epoch: the project's training path against a bare PyTorch loop doing the same work.

The project's path is what `python -m genre_style.train` runs: its config, DataModule, LightningModule,
callbacks (checkpointing, early stopping, history), Trainer settings and MLflow logging. The floor is a
plain loop over the same in-memory tensors with the same model, optimiser and batch size, with the
same validation pass each epoch. Both run in this process, alternating, and the medians of per-epoch
times after a warm-up are compared. Goal: ratio <= 1.10.

python -m benchmarks.bench_train [--epochs 6] [--rounds 3] [--batch-sizes 64 256] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings

import torch

from benchmarks.common import clip_table, compose, median, report


class EpochTimer:
    """Wall time between consecutive epoch starts: training, validation, logging and checkpointing."""

    def __init__(self) -> None:
        import lightning.pytorch as pl

        class _Timer(pl.Callback):
            def __init__(inner) -> None:
                inner.starts: list[float] = []

            def on_train_epoch_start(inner, trainer, pl_module) -> None:
                inner.starts.append(time.perf_counter())

            def on_fit_end(inner, trainer, pl_module) -> None:
                inner.starts.append(time.perf_counter())

        self.callback = _Timer()

    def epochs(self) -> list[float]:
        s = self.callback.starts
        return [b - a for a, b in zip(s[:-1], s[1:])]


def project_epochs(batch_size: int, epochs: int, store: str, device: str) -> list[float]:
    from hydra.utils import instantiate

    from genre_style.data.datamodule import GenreDataModule
    from genre_style.tracking.history import MetricHistory

    cfg = compose([f"batch_size={batch_size}", f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=true",
                   f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}", "data.split=segment",
                   "data.split_sizes=[6000,1000,1000]", f"callbacks.model_checkpoint.dirpath={store}/ckpt",
                   f"logger.mlflow.default_store_dir={store}", "callbacks.early_stopping.patience=1000",
                   f"trainer.default_root_dir={store}"])
    dm = GenreDataModule.from_table(clip_table(), **{k: v for k, v in cfg.data.items() if k in (
        "batch_size", "minibatches_per_step", "eval_batch_size", "split", "split_sizes", "seed", "balance", "standardize")})
    dm.setup("fit")
    model = instantiate(cfg.model, input_dim=dm.input_dim, num_classes=dm.num_classes, class_names=dm.class_names)
    logger = instantiate(cfg.logger.mlflow)
    timer = EpochTimer()
    callbacks = [instantiate(c) for c in cfg.callbacks.values()] + [MetricHistory(), timer.callback]
    trainer = instantiate({k: v for k, v in cfg.trainer.items() if k != "default_root_dir"}, callbacks=callbacks,
                          logger=logger, default_root_dir=store)
    trainer.fit(model, datamodule=dm)
    return timer.epochs()


def bare_epochs(batch_size: int, epochs: int, device: str) -> list[float]:
    from hydra.utils import instantiate

    from genre_style.data.datamodule import GenreDataModule

    cfg = compose([f"batch_size={batch_size}", "data.split=segment", "data.split_sizes=[6000,1000,1000]"])
    dm = GenreDataModule.from_table(clip_table(), batch_size=batch_size, split="segment", split_sizes=[6000, 1000, 1000],
                                    seed=cfg.seed)
    dm.setup("fit")
    model = instantiate(cfg.model, input_dim=dm.input_dim, num_classes=dm.num_classes, class_names=dm.class_names).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x_train, y_train, _ = (t.to(device) for t in dm.tensors["train"])
    x_val, y_val, _ = (t.to(device) for t in dm.tensors["val"])
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(x_train), device=device)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            x, y = x_train[idx], y_train[idx]
            loss = model.compute_losses(model(x), x, y)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            out = model(x_val)
            model.compute_losses(out, x_val, y_val)
            float((out.logits.argmax(1) == y_val).float().mean())
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs per round; the first of each round is warm-up")
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
        ours, floor = [], []
        for _ in range(args.rounds):
            ours += project_epochs(batch_size, args.epochs, store, args.device)[1:]
            floor += bare_epochs(batch_size, args.epochs, args.device)[1:]
        rows.append({"device": args.device, "batch_size": batch_size, "project_s_per_epoch": median(ours),
                     "bare_s_per_epoch": median(floor), "ratio": median(ours) / median(floor), "goal": "<= 1.10"})
    report("train", rows, ["device", "batch_size", "project_s_per_epoch", "bare_s_per_epoch", "ratio", "goal"])


if __name__ == "__main__":
    main()
