"""`last.ckpt`, the full training state for `resume=`, at an epoch's end at most every `min_interval_s` seconds.

Why not Lightning's ModelCheckpoint every epoch: a save (the model, Adam's state, the loops, the metric
history: ~5-7 ms) is ~6 % of a DSAE epoch at batch 256 on 2 CPU cores (`python -m benchmarks.bench_train
--overrides callbacks.last_checkpoint.min_interval_s=0`), paid hundreds of times in a sweep. At most once a
second it is noise, and a kill loses at most a second of training. Public ModelCheckpoint hooks only.
"""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint


class ResumeCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` (no monitor, full state, saved at the end of a training epoch) that skips epochs ending
    within `min_interval_s` of its previous save; the fit's last epoch is always saved. 0 saves every epoch."""

    def __init__(self, dirpath: Any = None, filename: str = "last", min_interval_s: float = 1.0, **kwargs: Any) -> None:
        if kwargs.get("monitor") is not None or kwargs.get("save_weights_only"):
            raise ValueError("ResumeCheckpoint keeps the full state of the newest epoch: no monitor, no save_weights_only")
        kwargs.update(monitor=None, save_weights_only=False, save_on_train_epoch_end=True)
        super().__init__(dirpath=dirpath, filename=filename, **kwargs)
        self.min_interval_s = float(min_interval_s)
        self._saved_at = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._saved_at = time.monotonic()  # the first save comes after min_interval_s of training

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        last_epoch = trainer.should_stop or (
            trainer.max_epochs is not None and 0 <= trainer.max_epochs <= trainer.current_epoch + 1
        )
        due = last_epoch or time.monotonic() - self._saved_at >= self.min_interval_s
        if trainer.strategy.broadcast(due):  # every DDP process must agree, or one would wait at the save's barrier
            super().on_train_epoch_end(trainer, pl_module)
            self._saved_at = time.monotonic()
