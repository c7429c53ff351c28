"""MetricHistory's checkpoint state: what a resume rebuilds the learning curves and MLflow backfill from."""

import math

import lightning.pytorch as pl
import pytest
import torch

from genre_style.callbacks.metric_history import MetricHistory


def test_history_state_is_one_string_that_round_trips_exactly_and_older_checkpoints_still_load(tmp_path):
    rows = [
        {"epoch": 0, "step": 23, "train/loss": 0.1 + 0.2, "val/acc": 0.4370000064373016, "val/ce": float("nan")},
        {"epoch": 1, "step": 47, "train/loss": 1.2345678901234567e-30, "val/acc": 1.0, "val/ce": 0.5},
    ]
    older = MetricHistory()
    older.load_state_dict({"history": rows})  # the form checkpoints had before: a list of dicts

    state = older.state_dict()
    assert [type(v) for v in state.values()] == [str]  # one object to pickle, however many epochs
    torch.save({"callbacks": {"MetricHistory": state}}, tmp_path / "last.ckpt")
    restored = MetricHistory()
    restored.load_state_dict(torch.load(tmp_path / "last.ckpt", weights_only=True)["callbacks"]["MetricHistory"])

    assert [list(r) for r in restored.history] == [list(r) for r in rows]
    for got, want in zip(restored.history, rows):
        for key, value in want.items():
            assert got[key] == value or (math.isnan(got[key]) and math.isnan(value)), key
    assert restored.state_dict() == state


class _FallingAccuracy(pl.LightningModule):
    """A tiny real model whose `val/acc` is best at epoch 0 and falls after: the best epoch is not the last."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", 1.0 - 0.1 * self.current_epoch, on_step=False, on_epoch=True)

    def test_step(self, batch, batch_idx):
        self.log("test/acc", 0.5)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_testing_from_the_full_best_checkpoint_keeps_every_epoch_of_the_history(tmp_path):
    """experiment=best's bug (issue #41): `trainer.test(ckpt_path=best)` restored the history from the best epoch's
    checkpoint, so history.json, the learning curves and the run description stopped at the best epoch."""
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4)
    best = ModelCheckpoint(dirpath=tmp_path, filename="best", monitor="val/acc", mode="max", save_weights_only=False)
    history = MetricHistory()
    trainer = pl.Trainer(
        max_epochs=4,
        callbacks=[best, history],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    model = _FallingAccuracy()
    trainer.fit(model, loader, loader)
    assert torch.load(best.best_model_path, weights_only=False)["epoch"] == 0  # the best epoch is the first
    trainer.test(model, loader, ckpt_path=best.best_model_path, weights_only=False, verbose=False)

    assert [row["epoch"] for row in history.history] == [0, 1, 2, 3]
    assert [row["val/acc"] for row in history.history] == pytest.approx([1.0, 0.9, 0.8, 0.7])


@pytest.mark.slow
def test_a_run_whose_best_epoch_is_not_the_last_keeps_every_epoch_in_its_record(tmp_path):
    """The issue's case through the CLI: a full best checkpoint (as experiment=best keeps) at epoch 0 of 4 (monitoring
    val/recon for its maximum: reconstruction falls epoch by epoch); history.json and the run description keep all 4."""
    import json

    from mlflow.tracking import MlflowClient

    from tests.conftest import FAST_RUN, run_cli

    args = [a for a in FAST_RUN if not a.startswith("trainer.max_epochs")]
    args += ["trainer.max_epochs=4", "monitor.metric=val/recon", "monitor.mode=max"]
    result = run_cli([*args, "callbacks.model_checkpoint.save_weights_only=false"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert torch.load(run / "artifacts/checkpoints/best.ckpt", weights_only=False)["epoch"] == 0  # best is not the last
    history = json.loads((run / "artifacts/report/history.json").read_text())
    assert [row["epoch"] for row in history] == [0, 1, 2, 3]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (logged,) = client.search_runs([client.get_experiment_by_name("genre-style").experiment_id])
    assert "Best epoch 0 of 4 by `val/recon`" in logged.data.tags["mlflow.note.content"]
    assert len(client.get_metric_history(logged.info.run_id, "val/recon")) == 4
