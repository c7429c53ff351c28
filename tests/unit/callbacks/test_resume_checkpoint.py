"""last.ckpt at most once per interval, and MLflow never ahead of it, each epoch at step = epoch (real fits, a real
MLflow store)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
from mlflow.tracking import MlflowClient

from genre_style.callbacks.metric_history import MetricHistory
from genre_style.callbacks.resume_checkpoint import ResumeCheckpoint
from genre_style.data.datamodule import GenreDataModule
from genre_style.models.dsae import DeepSoftmaxAutoencoder
from genre_style.models.encoders import mlp_encoder
from genre_style.tracking.logger import mlflow_logger
from tests.unit.models.test_training_loop import GENRES, _table


class MlflowProbe(pl.Callback):
    """The steps the MLflow store holds of a metric at each epoch's start."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client
        self.during: dict[str, list[list[int]]] = {"train/loss": [], "val/loss": []}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for key, seen in self.during.items():
            seen.append(sorted(m.step for m in self.client.get_metric_history(trainer.logger.run_id, key)))


class FailAt(pl.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("boom")


class SaveRecorder(pl.Callback):
    """The epochs a full checkpoint was taken at (callbacks are asked for their state only then)."""

    def __init__(self) -> None:
        self.epochs: list[int] = []

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self.epochs.append(trainer.current_epoch)


def _fit(tmp_path, epochs: int, logger=False, extra=(), full_state: bool = True, min_interval_s: float = 0.0):
    pl.seed_everything(7, verbose=False)
    dm = GenreDataModule.from_table(_table(), split={"mode": "segment"}, loader={"batch_size": 16}, seed=7)
    model = DeepSoftmaxAutoencoder(
        encoder=mlp_encoder([32]), embedding_dim=8, input_shape=(50,), num_classes=4, class_names=GENRES
    )
    checkpoint = ResumeCheckpoint(dirpath=tmp_path / "ckpt", filename="last", min_interval_s=min_interval_s)
    if not full_state:
        from lightning.pytorch.callbacks import ModelCheckpoint

        checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="best", save_weights_only=True)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[checkpoint, MetricHistory(), *extra],
    )
    trainer.fit(model, datamodule=dm)
    return trainer


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_every_epoch_with_no_interval_and_only_the_last_within_a_long_one(tmp_path):
    every, rare = SaveRecorder(), SaveRecorder()
    _fit(tmp_path / "a", epochs=5, extra=[every], min_interval_s=0)
    _fit(tmp_path / "b", epochs=5, extra=[rare], min_interval_s=3600)
    assert every.epochs == [0, 1, 2, 3, 4] and rare.epochs == [4]


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_mlflow_gets_an_epoch_once_the_resume_checkpoint_holds_it(tmp_path):
    logger = mlflow_logger(default_store_dir=str(tmp_path), synchronous=True)  # written at once: observable
    client = MlflowClient(tracking_uri=logger.tracking_uri)
    probe = MlflowProbe(client)
    _fit(tmp_path, epochs=4, logger=logger, extra=[probe])
    # At epoch e's start, the checkpoint of epoch e-1 holds its val metrics and the train metrics made before it.
    assert probe.during["val/loss"] == [[], [0], [0, 1], [0, 1, 2]]
    assert probe.during["train/loss"] == [[], [], [0], [0, 1]]
    logger.close()
    for key in ("train/loss", "val/loss", "val/acc"):
        assert [m.step for m in client.get_metric_history(logger.run_id, key)] == [0, 1, 2, 3]  # step = epoch, once
    assert client.get_metric_history(logger.run_id, "epoch") == []  # no diagonal `epoch` line


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_without_a_full_state_checkpoint_metrics_are_logged_at_once(tmp_path):
    logger = mlflow_logger(default_store_dir=str(tmp_path), synchronous=True)
    probe = MlflowProbe(MlflowClient(tracking_uri=logger.tracking_uri))
    _fit(tmp_path, epochs=3, logger=logger, extra=[probe], full_state=False)
    assert probe.during["val/loss"] == [[], [0], [0, 1]] and probe.during["train/loss"] == [[], [0], [0, 1]]


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_a_failed_fit_still_logs_the_epochs_it_held(tmp_path):
    """Held metrics are measurements: a crash logs them instead of dropping them."""
    logger = mlflow_logger(default_store_dir=str(tmp_path), synchronous=True)
    with pytest.raises(RuntimeError, match="boom"):
        _fit(tmp_path, epochs=10, logger=logger, extra=[FailAt(3)])
    client = MlflowClient(tracking_uri=logger.tracking_uri)
    assert client.get_run(logger.run_id).info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(logger.run_id, "val/loss")] == [0, 1, 2]
    assert [m.step for m in client.get_metric_history(logger.run_id, "train/loss")] == [0, 1, 2]
