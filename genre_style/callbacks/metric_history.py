"""Every epoch's train/val metrics, kept in the checkpoint: learning curves, a record that needs no store, and a
resume that gives MLflow each step once."""

from __future__ import annotations

import json

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint


class MetricHistory(pl.Callback):
    """Records each epoch's `train/*` and `val/*` metrics; the models log them at step = epoch.

    A row is written once the epoch is complete: at the next epoch's start, when training ends, or when a
    checkpoint is taken at the epoch's end. (Lightning calls a callback's `on_train_epoch_end` before the
    LightningModule's, which is where the model computes its train metrics.)

    No step logged twice after a kill: while the fit keeps a full-state checkpoint (`last.ckpt`), loggers
    that can (`hold_metrics`) keep metrics back until a checkpoint holds their epoch, and on resume the
    epochs the store lacks are backfilled from this history, which the checkpoint carries.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self._encoded: list[str] = []  # each row as JSON, encoded once: see state_dict
        self._ended_epoch: int | None = None
        self._trainer: pl.Trainer | None = None
        self._stage: str | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer, self._stage = trainer, stage
        resumable = any(isinstance(c, ModelCheckpoint) and not c.save_weights_only for c in trainer.checkpoint_callbacks)
        if stage == "fit" and resumable:
            for logger in trainer.loggers:
                getattr(logger, "hold_metrics", lambda: None)()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            for logger in trainer.loggers:
                getattr(logger, "release_metrics", lambda: None)()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Not on_train_start: a checkpoint of the fit's last epoch resumes to a fit with nothing left to train.
        if self.history:
            for logger in trainer.loggers:
                getattr(logger, "backfill", lambda rows: None)(self.history)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._ended_epoch = trainer.current_epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record(trainer)

    def _record(self, trainer: pl.Trainer) -> None:
        epoch, self._ended_epoch = self._ended_epoch, None
        if epoch is None or any(row["epoch"] == epoch for row in self.history):
            return
        row: dict[str, float] = {"epoch": epoch, "step": epoch}  # the step the models log epoch metrics at
        for key, value in trainer.callback_metrics.items():
            if key.startswith(("train/", "val/")):
                row[key] = float(value)
        self.history.append(row)
        self._encoded.append(json.dumps(row))

    def state_dict(self) -> dict:
        # `last.ckpt` is written at an epoch's end, after the model made its train metrics: record that epoch
        # now, or a resume from this checkpoint would never have its row (nor backfill MLflow with it).
        if self._trainer is not None:
            self._record(self._trainer)
        # One string, not a list of dicts: torch.save pickles every object through a Python callback, and
        # 200 epochs of rows are ~4,000 objects in every epoch's checkpoint. JSON keeps floats exact.
        return {"history_json": "[" + ",".join(self._encoded) + "]"}

    def load_state_dict(self, state_dict: dict) -> None:
        # Lightning restores every callback from a full checkpoint passed to test/validate/predict too: testing from
        # the best epoch's checkpoint would roll the history back to that epoch and lose the epochs after it. Only
        # a fit resumes from its checkpoint's history.
        if self._stage is not None and self._stage != "fit":
            return
        rows = json.loads(state_dict["history_json"]) if "history_json" in state_dict else state_dict.get("history", [])
        self.history = [dict(row) for row in rows]  # "history": checkpoints written before the JSON form
        self._encoded = [json.dumps(row) for row in self.history]
