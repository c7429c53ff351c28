"""The weight average (EMAWeights): validation, the best checkpoint and test all see the averaged weights."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from genre_style.callbacks.exact_resume import RandomState
from genre_style.callbacks.resume_checkpoint import ResumeCheckpoint
from genre_style.callbacks.weight_average import EMAWeights
from genre_style.data.datamodule import GenreDataModule
from genre_style.errors import UserError
from genre_style.models.dsae import DeepSoftmaxAutoencoder
from genre_style.models.encoders import mlp_encoder
from tests.unit.models.test_training_loop import GENRES, _table


def _setup(tmp_path, weights_only: bool = False, max_epochs: int = 3, extra=()):
    pl.seed_everything(3, verbose=False)
    loader = {"batch_size": 16, "minibatches_per_step": 1}
    dm = GenreDataModule.from_table(_table(), split={"mode": "segment"}, loader=loader, seed=3)
    model = DeepSoftmaxAutoencoder(
        encoder=mlp_encoder([32]),
        embedding_dim=8,
        input_shape=(50,),
        num_classes=4,
        class_names=GENRES,
        optimizer={"_target_": "torch.optim.Adam", "lr": 3e-2},
    )
    best = ModelCheckpoint(dirpath=tmp_path, filename="best", monitor="val/acc", mode="max", save_weights_only=weights_only)
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        callbacks=[EMAWeights(decay=0.9), best, *extra],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    return dm, model, best, trainer


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_best_checkpoint_and_test_score_the_averaged_weights(tmp_path):
    dm, model, best, trainer = _setup(tmp_path)
    trainer.fit(model, datamodule=dm)
    checkpoint = torch.load(best.best_model_path, weights_only=False)
    averaged, raw = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert any(not torch.equal(averaged[k], raw[k]) for k in averaged)  # the average is not the last step's weights
    val_acc_at_best = best.best_model_score.item()
    scores = trainer.validate(model, datamodule=dm, ckpt_path=best.best_model_path, weights_only=False, verbose=False)
    assert scores[0]["val/acc"] == pytest.approx(val_acc_at_best)  # what won on val is what a checkpoint scores
    for name, value in model.state_dict().items():  # and the model holds the averaged weights after loading
        assert torch.equal(value, averaged[name])


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_a_resumed_fit_ends_with_the_average_an_uninterrupted_one_has(tmp_path):
    def fit(folder, epochs, resume=None):
        last = ResumeCheckpoint(dirpath=tmp_path / folder / "last", filename="last", min_interval_s=0)
        dm, model, _, trainer = _setup(tmp_path / folder, max_epochs=epochs, extra=[last, RandomState()])
        trainer.fit(model, datamodule=dm, ckpt_path=resume, weights_only=False)
        return model.state_dict()

    uninterrupted = fit("a", 4)
    fit("b", 2)  # stops after epoch 2 with last.ckpt: the run that was interrupted
    resumed = fit("c", 4, resume=tmp_path / "b" / "last" / "last.ckpt")
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_weights_only_checkpoints_are_refused(tmp_path):
    dm, model, _, trainer = _setup(tmp_path, weights_only=True)
    with pytest.raises(UserError, match="save_weights_only"):
        trainer.fit(model, datamodule=dm)


def test_decay_outside_0_1_is_refused():
    with pytest.raises(UserError, match="decay"):
        EMAWeights(decay=1.0)
