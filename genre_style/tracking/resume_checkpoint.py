"""The full training state for `resume=`, taken at an epoch's end at most every `min_interval_s` seconds.

Why not every epoch: `last.ckpt` (the model, Adam's state, the loops, the metric history) costs ~5 ms to
take, 3 % of a 0.16-s epoch of the DSAE at batch 256 on 2 CPU cores, paid hundreds of times in a sweep.
Taken at most once a second it is under 0.5 % of training, and a kill loses at most a second of it;
epochs longer than the interval are still saved after each one.

A resume retrains the epochs after its checkpoint, so MLflow must not already hold them, or their steps
would be logged twice. Loggers that can hold metrics (`hold_metrics`, as ours does) therefore keep an
epoch's metrics until a full checkpoint holds that epoch: after a SIGKILL, MLflow has no epoch the
checkpoint lacks, and `MetricHistory` backfills the ones it missed. When training ends (or fails) the
held metrics are logged.
"""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint


class ResumeCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` for `last.ckpt` (no monitor, full state) that skips epochs ending within
    `min_interval_s` of its previous save; the fit's last epoch is always saved. 0 saves every epoch."""

    def __init__(self, *args: Any, min_interval_s: float = 1.0, **kwargs: Any) -> None:
        if min_interval_s < 0:
            raise ValueError(f"min_interval_s must be >= 0, got {min_interval_s}")
        if kwargs.get("monitor") is not None or kwargs.get("save_weights_only"):
            raise ValueError("ResumeCheckpoint keeps the full state of the newest epoch: no monitor, no save_weights_only")
        super().__init__(*args, **kwargs)
        self.min_interval_s = float(min_interval_s)
        self._saved_at = 0.0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            _tell_loggers(trainer, "hold_metrics")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._saved_at = time.monotonic()  # the first save comes after min_interval_s of training

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._due(trainer):
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Only where this hook is the one that saves: one decision (and one DDP broadcast) an epoch.
        if not self._should_save_on_train_epoch_end(trainer) and self._due(trainer):
            super().on_validation_end(trainer, pl_module)

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)  # every save goes through here, whichever hook made it
        self._saved_at = time.monotonic()

    def _due(self, trainer: pl.Trainer) -> bool:
        max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs >= 0 else None
        last_epoch = trainer.should_stop or (max_epochs is not None and trainer.current_epoch + 1 >= max_epochs)
        due = last_epoch or time.monotonic() - self._saved_at >= self.min_interval_s
        # Every process must agree, or one would wait at the save's barrier for the others (DDP).
        return bool(trainer.strategy.broadcast(due))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().teardown(trainer, pl_module, stage)
        if stage == "fit":
            _tell_loggers(trainer, "release_metrics")


def _tell_loggers(trainer: pl.Trainer, method: str) -> None:
    """Call `method` on the loggers that have it (ours; Lightning's own loggers log at once)."""
    for logger in trainer.loggers:
        if hasattr(logger, method):
            getattr(logger, method)()
