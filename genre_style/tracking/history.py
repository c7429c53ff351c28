"""A callback that keeps every epoch's train/val metrics, for learning curves that need no store."""

from __future__ import annotations

import lightning.pytorch as pl


class MetricHistory(pl.Callback):
    """Records `train/*` and `val/*` epoch metrics after each training epoch (validation has run by then)."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        row = {"epoch": trainer.current_epoch}
        for key, value in trainer.callback_metrics.items():
            if key.startswith(("train/", "val/")):
                row[key] = float(value)
        self.history.append(row)
