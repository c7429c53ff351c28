"""last.ckpt at most once per interval, and MLflow never ahead of it (real fits, a real MLflow store)."""

from __future__ import annotations

import time

import lightning.pytorch as pl
import pytest
import torch
from mlflow.tracking import MlflowClient

from genre_style.data.datamodule import GenreDataModule
from genre_style.models.dsae import DeepSoftmaxAutoencoder
from genre_style.models.encoders import mlp_encoder
from genre_style.tracking.history import MetricHistory
from genre_style.tracking.mlflow_logger import mlflow_logger
from genre_style.tracking.resume_checkpoint import ResumeCheckpoint
from tests.test_training_loop import GENRES, _table


class SaveRecorder(pl.Callback):
    """Notes when last.ckpt was saved, from the callback's own record of the step it saved at."""

    def __init__(self, checkpoint: ResumeCheckpoint, pause_s: float = 0.0) -> None:
        self.checkpoint, self.pause_s = checkpoint, pause_s
        self.saves: list[tuple[int, float]] = []  # (epoch, time)
        self._seen = 0  # the step of the newest save seen (none yet)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._note(trainer, trainer.current_epoch - 1)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._note(trainer, trainer.current_epoch - 1)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        time.sleep(self.pause_s)  # a slower epoch

    def _note(self, trainer: pl.Trainer, epoch: int) -> None:
        if self.checkpoint._last_global_step_saved > self._seen:
            self._seen = self.checkpoint._last_global_step_saved
            self.saves.append((epoch, time.monotonic()))


def _fit(tmp_path, min_interval_s: float, epochs: int, pause_s: float = 0.0, logger=False, extra=()):
    pl.seed_everything(7, verbose=False)
    dm = GenreDataModule.from_table(_table(), batch_size=16, split="segment", seed=7)
    model = DeepSoftmaxAutoencoder(encoder=mlp_encoder([32]), embedding_dim=8, input_shape=(50,), num_classes=4, class_names=GENRES)
    checkpoint = ResumeCheckpoint(dirpath=tmp_path / "ckpt", filename="last", min_interval_s=min_interval_s)
    recorder = SaveRecorder(checkpoint, pause_s)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=logger, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[checkpoint, recorder, MetricHistory(), *extra])
    trainer.fit(model, datamodule=dm)
    return trainer, recorder


def test_every_epoch_with_no_interval_and_only_the_last_within_a_long_one(tmp_path):
    _, every = _fit(tmp_path / "a", min_interval_s=0, epochs=5)
    assert [epoch for epoch, _ in every.saves] == [0, 1, 2, 3, 4]
    _, rare = _fit(tmp_path / "b", min_interval_s=3600, epochs=5)
    assert [epoch for epoch, _ in rare.saves] == [4]  # the fit's last epoch is always kept
    state = torch.load(tmp_path / "b" / "ckpt" / "last.ckpt", weights_only=False)
    assert state["epoch"] == 4 and state["optimizer_states"] and "MetricHistory" in state["callbacks"]


def test_saves_are_at_least_the_interval_apart(tmp_path):
    _, recorder = _fit(tmp_path, min_interval_s=0.5, epochs=8, pause_s=0.2)
    epochs = [epoch for epoch, _ in recorder.saves]
    assert epochs[-1] == 7 and len(epochs) < 8, epochs  # 0.2-s epochs: not every one
    gaps = [b - a for (_, a), (_, b) in zip(recorder.saves[:-2], recorder.saves[1:-1])]  # the last save is forced
    assert all(gap >= 0.5 for gap in gaps), gaps


def test_negative_interval_is_refused():
    with pytest.raises(ValueError, match="min_interval_s"):
        ResumeCheckpoint(min_interval_s=-1)


class MlflowProbe(pl.Callback):
    """What the MLflow store holds of train/loss while training runs."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client
        self.during: list[list[int]] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        run_id = trainer.logger.run_id
        self.during.append(sorted(m.step for m in self.client.get_metric_history(run_id, "val/loss")))


def test_mlflow_gets_an_epoch_only_once_a_checkpoint_holds_it(tmp_path):
    logger = mlflow_logger(default_store_dir=str(tmp_path), synchronous=True)  # written at once: observable
    client = MlflowClient(tracking_uri=logger.tracking_uri)
    probe = MlflowProbe(client)
    trainer, recorder = _fit(tmp_path, min_interval_s=3600, epochs=4, logger=logger, extra=[probe])
    assert all(steps == [] for steps in probe.during)  # no checkpoint before the last epoch: nothing logged
    logger.close()
    steps = [m.step for m in client.get_metric_history(logger.run_id, "train/loss")]
    assert len(steps) == len(set(steps)) == 4  # everything once, after the checkpoint and the end of the fit
    assert [epoch for epoch, _ in recorder.saves] == [3]


class FailAt(pl.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("boom")


def test_a_failed_fit_still_logs_the_epochs_it_held(tmp_path):
    """Held metrics are measurements: a crash before any checkpoint logs them instead of dropping them."""
    logger = mlflow_logger(default_store_dir=str(tmp_path), synchronous=True)
    with pytest.raises(RuntimeError, match="boom"):
        _fit(tmp_path, min_interval_s=3600, epochs=10, logger=logger, extra=[FailAt(3)])
    client = MlflowClient(tracking_uri=logger.tracking_uri)
    run = client.get_run(logger.run_id)
    assert run.info.status == "FAILED"
    assert sorted(m.step for m in client.get_metric_history(logger.run_id, "val/loss")) == [0, 1, 2]
    assert len(client.get_metric_history(logger.run_id, "train/loss")) == 3
