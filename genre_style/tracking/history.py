"""A callback that keeps every epoch's train/val metrics: learning curves and a record that need no store."""

from __future__ import annotations

import json
import logging

import lightning.pytorch as pl

log = logging.getLogger(__name__)


class MetricHistory(pl.Callback):
    """Records each epoch's `train/*` and `val/*` metrics, at the step MLflow got them.

    A row is written once the epoch is complete: at the next epoch's start, when training ends, or when a
    checkpoint is taken at the epoch's end.
    (Lightning calls a callback's `on_train_epoch_end` before the LightningModule's, which is where the
    model computes its train metrics, so reading them there would give the previous epoch's.)
    Its state goes into full checkpoints. On resume it backfills MLflow with the metrics of checkpointed
    epochs the store lacks (held back until a checkpoint, or still queued for MLflow's background writer,
    when the process was killed).
    """

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self._encoded: list[str] = []  # each row as JSON, encoded once: see state_dict
        self._ended_epoch: int | None = None
        self._trainer: pl.Trainer | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

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
        # The step Lightning logged the epoch's metrics at (it counts batches, not optimiser steps).
        logged_step = getattr(trainer.fit_loop.epoch_loop, "_batches_that_stepped", trainer.global_step) - 1
        row = {"epoch": epoch, "step": max(logged_step, 0)}
        for key, value in trainer.callback_metrics.items():
            if key.startswith(("train/", "val/")):
                row[key] = float(value)
        self.history.append(row)
        self._encoded.append(json.dumps(row))

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Not on_train_start: a checkpoint of the fit's last epoch resumes to a fit with nothing left to train.
        if self.history:
            self._backfill_mlflow(trainer)

    def _backfill_mlflow(self, trainer: pl.Trainer) -> None:
        from lightning.pytorch.loggers import MLFlowLogger

        for logger in trainer.loggers:
            if not isinstance(logger, MLFlowLogger):
                continue
            keys = sorted({key for row in self.history for key in row if "/" in key})
            try:  # per metric: an epoch's val metrics can have reached MLflow without its train metrics
                logged = {key: {m.step for m in logger.experiment.get_metric_history(logger.run_id, key)} for key in keys}
            except Exception as exc:  # the store is unreachable: the resilient logger reports it later
                log.warning("could not check MLflow for missing epochs: %s", exc)
                continue
            backfilled = 0
            for row in self.history:
                missing = {k: v for k, v in row.items() if "/" in k and row["step"] not in logged[k]}
                if missing:
                    logger.log_metrics(missing, step=int(row["step"]))
                    backfilled += 1
            if backfilled:
                log.info("backfilled %d epoch(s) MLflow had not received before the interruption", backfilled)

    def state_dict(self) -> dict:
        # `last.ckpt` is written at an epoch's end, after the model made its train metrics: record that epoch
        # now, or a resume from this checkpoint would never have its row (nor backfill MLflow with it).
        if self._trainer is not None:
            self._record(self._trainer)
        # One string, not a list of dicts: torch.save pickles every object through a Python callback
        # (~1 us each), and 200 epochs of rows are ~4,000 objects in every epoch's checkpoint. JSON keeps
        # floats exact (repr round-trips), NaN included.
        return {"history_json": "[" + ",".join(self._encoded) + "]"}

    def load_state_dict(self, state_dict: dict) -> None:
        rows = json.loads(state_dict["history_json"]) if "history_json" in state_dict else state_dict.get("history", [])
        self.history = [dict(row) for row in rows]  # "history": checkpoints written before the JSON form
        self._encoded = [json.dumps(row) for row in self.history]
