"""The training loop: several minibatches per Lightning batch take the same steps as one per batch."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from genre_style.data.clip_table import ClipTable
from genre_style.data.datamodule import GenreDataModule
from genre_style.models.dsae import DeepSoftmaxAutoencoder
from genre_style.models.encoders import mlp_encoder
from tests.conftest import labelled_clips, quiet_trainer

GENRES = ["classical", "jazz", "pop", "metal"]


def _table(n_tracks: int = 24, clips: int = 10, dim: int = 50) -> ClipTable:
    return labelled_clips(n_tracks, clips, (dim,), GENRES)


def _fit(
    minibatches_per_step: int, epochs: int = 3, callbacks: list[pl.Callback] | None = None, **model_kwargs
) -> tuple[pl.Trainer, DeepSoftmaxAutoencoder, GenreDataModule]:
    pl.seed_everything(7, verbose=False)
    loader = {"batch_size": 16, "minibatches_per_step": minibatches_per_step}
    dm = GenreDataModule.from_table(_table(), split={"mode": "segment"}, loader=loader, seed=7)
    dm.setup("fit")
    model = DeepSoftmaxAutoencoder(
        encoder=mlp_encoder([32]),
        embedding_dim=8,
        input_shape=dm.input_shape,
        num_classes=4,
        class_names=GENRES,
        dropout=0.1,
        **model_kwargs,
    )
    trainer = quiet_trainer(epochs, callbacks=callbacks)
    trainer.fit(model, datamodule=dm)
    return trainer, model, dm


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_grouped_minibatches_take_exactly_the_same_optimiser_steps():
    one_trainer, one, dm = _fit(1)
    grouped_trainer, grouped, _ = _fit(4)
    minibatches = -(-len(dm.tensors["train"][0]) // 16)
    assert one_trainer.global_step == grouped_trainer.global_step == 3 * minibatches  # optimiser steps, not batches
    assert grouped_trainer.num_training_batches == -(-minibatches // 4)
    for a, b in zip(one.state_dict().values(), grouped.state_dict().values()):
        assert torch.equal(a, b)  # same minibatches, same order, same dropout draws: the same weights
    assert one_trainer.callback_metrics["train/loss"] == grouped_trainer.callback_metrics["train/loss"]


class StepListener(pl.Callback):
    """Listens to the per-step hooks, which sends training down Lightning's own backward/step path."""

    def __init__(self) -> None:
        self.calls = {"on_before_backward": 0, "on_after_backward": 0, "on_before_optimizer_step": 0}

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.calls["on_before_backward"] += 1

    def on_after_backward(self, trainer, pl_module) -> None:
        self.calls["on_after_backward"] += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.calls["on_before_optimizer_step"] += 1


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
@pytest.mark.parametrize("clip", [None, 0.05])
def test_plain_steps_match_lightnings_path_and_listeners_still_get_their_hooks(clip):
    plain_trainer, plain, _ = _fit(4, epochs=2, gradient_clip_val=clip)
    listener = StepListener()
    hooked_trainer, hooked, _ = _fit(4, epochs=2, callbacks=[listener], gradient_clip_val=clip)
    assert plain._plain_steps and not hooked._plain_steps
    assert plain_trainer.global_step == hooked_trainer.global_step > 0
    assert set(listener.calls.values()) == {hooked_trainer.global_step}  # every hook, once per optimiser step
    for a, b in zip(plain.state_dict().values(), hooked.state_dict().values()):
        assert torch.equal(a, b)
    assert plain_trainer.callback_metrics["train/loss"] == hooked_trainer.callback_metrics["train/loss"]


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_gradient_clipping_is_applied_by_the_model():
    _, clipped, _ = _fit(4, epochs=1, gradient_clip_val=1e-6)
    _, free, _ = _fit(4, epochs=1)
    moved = [(a - b).abs().max().item() for a, b in zip(clipped.parameters(), free.parameters())]
    assert max(moved) > 0  # clipping to a tiny norm changes the updates


@pytest.mark.slow
@pytest.mark.parametrize(
    "override, expected",
    [
        ("+trainer.gradient_clip_val=0.5", "+model.gradient_clip_val=0.5"),
        ("+trainer.accumulate_grad_batches=4", "raise batch_size"),
        ("data.loader.minibatches_per_step=0", "data.loader.minibatches_per_step must be a positive integer"),
    ],
)
def test_trainer_options_the_models_replace_are_explained(override, expected, tmp_path):
    from tests.conftest import FAST_RUN, run_cli

    result = run_cli([*FAST_RUN, override], tmp_path)
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr


def test_a_group_moves_to_the_device_as_three_tensors_and_cuts_into_views():
    from lightning.fabric.utilities.apply_func import move_data_to_device

    from genre_style.data.batching import Minibatches

    loader = {"batch_size": 16, "minibatches_per_step": 4}
    dm = GenreDataModule.from_table(_table(), split={"mode": "segment"}, loader=loader, seed=7)
    dm.setup("fit")
    group = next(iter(dm.train_dataloader()))
    moved = move_data_to_device(group, torch.device("cpu"))  # what Lightning does with each batch
    assert isinstance(moved, Minibatches) and len(moved.tensors) == 3 and len(moved) == 4
    minibatches = list(moved)
    assert [len(x) for x, _, _ in minibatches] == [16] * 4
    assert all(x.data_ptr() == moved.tensors[0][16 * i :].data_ptr() for i, (x, _, _) in enumerate(minibatches))
