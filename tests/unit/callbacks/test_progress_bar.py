"""The training progress bar counts epochs and shows the last complete epoch's metrics."""

from __future__ import annotations

import re

import lightning.pytorch as pl
import pytest

from genre_style.callbacks.progress_bar import EpochProgressBar
from genre_style.data.datamodule import GenreDataModule
from genre_style.models.dsae import DeepSoftmaxAutoencoder
from genre_style.models.encoders import mlp_encoder
from tests.unit.models.test_training_loop import GENRES, _table


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_the_bar_counts_epochs_hides_validation_and_predict_and_keeps_the_test_bar(capsys):
    dm = GenreDataModule.from_table(_table(), split={"mode": "segment"}, loader={"batch_size": 16}, seed=7)
    model = DeepSoftmaxAutoencoder(
        encoder=mlp_encoder([32]), embedding_dim=8, input_shape=(50,), num_classes=4, class_names=GENRES
    )
    trainer = pl.Trainer(
        max_epochs=4,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[EpochProgressBar()],
    )
    trainer.fit(model, datamodule=dm)
    fit_output = capsys.readouterr().out
    screens = fit_output.replace("\n", "\r").split("\r")
    training = [s for s in screens if s.startswith("Training")]
    assert "0/4" in training[0] and "4/4" in training[-1], training
    assert "epoch/s" in training[-1] or "s/epoch" in training[-1]  # tqdm flips the unit when an epoch takes > 1 s
    shown = dict(re.findall(r"(\w+/\w+)=([-0-9.e+]+)", training[-1]))
    for name in ("train/loss", "val/acc"):  # the last epoch's train and val metrics, to the 3 digits shown
        assert float(shown[name]) == pytest.approx(float(trainer.callback_metrics[name]), rel=5e-3), name
    assert "Validation" not in fit_output  # no bar opened and closed every epoch
    trainer.test(model, datamodule=dm, verbose=False)
    assert "Testing" in capsys.readouterr().out  # test keeps Lightning's bar
    assert len(trainer.predict(model, dataloaders=dm.eval_dataloader("val"))) == 1
    assert capsys.readouterr().out == ""  # scoring's predict passes draw nothing


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_a_disabled_trainer_bar_draws_nothing(capsys):
    dm = GenreDataModule.from_table(_table(), split={"mode": "segment"}, loader={"batch_size": 16}, seed=7)
    model = DeepSoftmaxAutoencoder(
        encoder=mlp_encoder([32]), embedding_dim=8, input_shape=(50,), num_classes=4, class_names=GENRES
    )
    bar = EpochProgressBar()
    bar.disable()
    pl.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_model_summary=False, callbacks=[bar]
    ).fit(model, datamodule=dm)
    assert "Training" not in capsys.readouterr().out
