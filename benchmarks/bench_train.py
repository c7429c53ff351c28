"""Seconds per epoch: the project's training path against a bare PyTorch loop doing the same work.

The project's path is what `python -m genre_style.train` runs: its config, DataModule, LightningModule,
callbacks (checkpointing, early stopping, history), Trainer settings and MLflow logging. The floor is a
plain loop over the same in-memory tensors with the same model, optimiser and batch size, with the
same validation pass each epoch. Both run in this process, alternating in blocks (4 project epochs, then
4 bare ones), and the medians of per-epoch times after a warm-up are compared. Goals: ratio <= 1.10 for the MLP;
<= 0.85 for the log-mel CNN, where the project lays the model out channels-last and the bare loop, as a user's own
loop would, runs it as built (genre_style/speedups.py).

python -m benchmarks.bench_train [--epochs 13] [--rounds 5] [--block 4] [--batch-sizes 64 256] [--device cpu|cuda]
python -m benchmarks.bench_train --encoder logmel_cnn     # the log-mel CNN on 64 x 79 maps (3200 clips, fewer epochs)
GENRE_STYLE_REPRODUCIBLE=0 python -m benchmarks.bench_train   # without the reproducible math (genre_style/reproducibility.py)
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from typing import Any

import torch

from benchmarks.common import clip_table, compose, median, report

# What each encoder trains on: the paper's 8000 pooled clips for the MLP; for the conv encoders, gtzan-dev-3-sized
# data (3200 clips) of the shape their front-end gives.
ENCODERS: dict[str, dict[str, Any]] = {
    "mlp": {"overrides": ["data.split.sizes=[6000,1000,1000]"], "clips": 8000, "shape": (500,)},
    "logmel_cnn": {
        "overrides": ["encoder=logmel_cnn", "features=logmel", "data.split.sizes=[2400,400,400]", "model.recon_reduction=mean"],
        "clips": 3200,
        "shape": (64, 79),
    },
    "sample_cnn": {
        "overrides": ["encoder=sample_cnn", "features=waveform", "data.split.sizes=[2400,400,400]", "model.recon_reduction=mean"],
        "clips": 3200,
        "shape": (20000,),
    },
}


GOALS = {"logmel_cnn": "<= 0.85"}  # the project's path against the bare eager loop (issue #30)


def encoder_table(encoder: str) -> Any:
    spec = ENCODERS[encoder]
    return clip_table(n_clips=spec["clips"], shape=spec["shape"])


class BareLoop:
    """The floor: a plain PyTorch loop over the same in-memory tensors, same model, optimiser and batch size,
    with the same validation pass (one forward of the val split, loss and accuracy) each epoch."""

    def __init__(self, batch_size: int, device: str, encoder: str) -> None:
        from hydra.utils import instantiate

        from genre_style.data.datamodule import GenreDataModule

        cfg = compose([f"batch_size={batch_size}", "data.split.mode=segment", *ENCODERS[encoder]["overrides"]])
        dm = GenreDataModule.from_table(
            encoder_table(encoder),
            loader={"batch_size": batch_size},
            split={"mode": "segment", "sizes": cfg.data.split.sizes},
            seed=cfg.seed,
        )
        dm.setup("fit")
        self.model = instantiate(
            cfg.model, input_shape=dm.input_shape, num_classes=dm.num_classes, class_names=dm.class_names
        ).to(device)
        self.optimizer = instantiate(cfg.model.optimizer, params=self.model.parameters())  # the models' own
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


def block_timer(bare: BareLoop, block: int) -> Any:
    """A callback that times the project's epochs (each from one epoch start to the next: training,
    validation, logging, checkpointing) and, after every `block` of them, runs as many bare epochs, so each
    block has a floor measured right next to it: this machine's speed drifts by tens of per cent within
    minutes, which unpaired runs mistake for overhead. The first project epoch is warm-up."""
    import lightning.pytorch as pl

    class BlockTimer(pl.Callback):
        def __init__(self) -> None:
            self.blocks: list[tuple[list[float], list[float]]] = []  # (project epochs, bare epochs after them)
            self._project: list[float] = []
            self._started: float | None = None

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            if trainer.current_epoch >= 2:  # epoch 0 is warm-up
                self._lap(trainer, last=False)
            self._started = time.perf_counter()

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self._lap(trainer, last=True)

        def _lap(self, trainer: Any, last: bool) -> None:
            self._project.append(time.perf_counter() - self._started)
            if len(self._project) < block and not last:
                return
            self.blocks.append((self._project, [bare.epoch() for _ in self._project]))
            self._project = []

    return BlockTimer()


def project_blocks(
    batch_size: int, epochs: int, block: int, store: str, device: str, bare: BareLoop, encoder: str, overrides: list[str]
) -> list[tuple[list[float], list[float]]]:
    """One training run of the project's path, its epochs timed in blocks, each followed by bare epochs."""
    from hydra.utils import instantiate

    from genre_style.callbacks import instantiate_callbacks
    from genre_style.callbacks.metric_history import MetricHistory
    from genre_style.data.datamodule import GenreDataModule

    cfg = compose(
        [
            f"batch_size={batch_size}",
            f"trainer.max_epochs={epochs}",
            "trainer.enable_progress_bar=true",
            f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
            "data.split.mode=segment",
            *ENCODERS[encoder]["overrides"],
            f"callbacks.model_checkpoint.dirpath={store}/ckpt",
            f"callbacks.last_checkpoint.dirpath={store}/ckpt",
            "callbacks.early_stopping.patience=1000",
            f"trainer.default_root_dir={store}",
            *overrides,
        ]
    )
    dm = GenreDataModule.from_table(encoder_table(encoder), split=cfg.data.split, loader=cfg.data.loader, seed=cfg.data.seed)
    dm.setup("fit")
    model = instantiate(cfg.model, input_shape=dm.input_shape, num_classes=dm.num_classes, class_names=dm.class_names)
    logger = False  # logger=none composes to {}
    if "mlflow" in (cfg.get("logger") or {}):
        cfg.logger.mlflow.default_store_dir = store
        logger = instantiate(cfg.logger.mlflow)
        logger.start(cfg, resumed_from=None)  # as train does: params, and system metrics where switched on
    timer = block_timer(bare, block)
    callbacks = [*instantiate_callbacks(cfg), MetricHistory(), timer]
    trainer = instantiate(
        {k: v for k, v in cfg.trainer.items() if k != "default_root_dir"},
        callbacks=callbacks,
        logger=logger,
        default_root_dir=store,
    )
    trainer.fit(model, datamodule=dm)
    if logger:
        logger.close("success")  # as train does: ends the run and flushes MLflow's queued writes
    return timer.blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="mlp", choices=sorted(ENCODERS))
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per round; the first of each round is warm-up (default 13 for mlp, 5 for the conv encoders)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="training runs per batch size (default 5 for mlp, 1 for conv)")
    parser.add_argument(
        "--block", type=int, default=None, help="project epochs between bare blocks (default 4 for mlp, 2 for conv)"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="default 64 256 for mlp, 64 for conv")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--overrides",
        nargs="*",
        default=[],
        help="extra Hydra overrides for the project's path, e.g. ~callbacks.last_checkpoint to see what resume checkpoints cost",
    )
    args = parser.parse_args()
    mlp = args.encoder == "mlp"
    args.epochs = args.epochs or (13 if mlp else 5)
    args.rounds = args.rounds or (5 if mlp else 1)
    args.block = args.block or (4 if mlp else 2)
    args.batch_sizes = args.batch_sizes or ([64, 256] if mlp else [64])
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as store:  # one MLflow store: MLflow caches its engine per URI
        rows = [measure(batch_size, args, store) for batch_size in args.batch_sizes]
    report(
        "train",
        rows,
        [
            "encoder",
            "device",
            "reproducible",
            "batch_size",
            "project_s_per_epoch",
            "bare_s_per_epoch",
            "ratio",
            "median_block_ratio",
            "block_ratio_quartiles",
            "epochs",
            "goal",
        ],
    )


def measure(batch_size: int, args: argparse.Namespace, store: str) -> dict[str, Any]:
    """`args.rounds` training runs of the project's path at one batch size, each epoch block paired with bare epochs."""
    bare = BareLoop(batch_size, args.device, args.encoder)
    blocks = []
    for _ in range(args.rounds):
        blocks += project_blocks(batch_size, args.epochs, args.block, store, args.device, bare, args.encoder, args.overrides)
    ours, floor = [t for p, _ in blocks for t in p], [t for _, b in blocks for t in b]
    block_ratios = [sum(p) / sum(b) for p, b in blocks]
    from genre_style.reproducibility import enabled

    return {
        "encoder": args.encoder,
        "device": args.device,
        "reproducible": enabled(),
        "batch_size": batch_size,
        "project_s_per_epoch": median(ours),
        "bare_s_per_epoch": median(floor),
        "ratio": median(ours) / median(floor),
        "median_block_ratio": median(block_ratios),
        "block_ratio_quartiles": "{:.3f}-{:.3f}".format(*quartiles(block_ratios)),
        "epochs": len(ours),
        "goal": GOALS.get(args.encoder, "<= 1.10"),
    }


def quartiles(values: list[float]) -> tuple[float, float]:
    """The middle half of the block ratios: how much the machine moved while this ran."""
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, q3


if __name__ == "__main__":
    main()
