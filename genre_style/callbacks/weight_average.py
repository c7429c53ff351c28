"""An exponential moving average of the weights, on Lightning's `WeightAveraging` callback.

Validation, the best checkpoint, test and every later use see the averaged weights: on small music corpora a
single step's weights are noisy (val accuracy swings by points from one epoch to the next), the average is not.
Two things Lightning's callback does not do on its own, and this subclass does:
- the averaged weights reach a checkpoint only through callbacks' `on_save_checkpoint`, which Lightning skips for
  weights-only checkpoints; `experiment=best` keeps full best checkpoints for that reason
  (`callbacks.model_checkpoint.save_weights_only=false`), and `check_checkpoint` refuses the other setting;
- loading a checkpoint outside fit (`trainer.test(ckpt_path=best)`) must keep the averaged weights it holds,
  where the stock callback would load the raw ones saved beside them (`current_model_state`).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint, WeightAveraging
from lightning.pytorch.trainer.states import TrainerFn
from torch.optim.swa_utils import get_ema_multi_avg_fn

from genre_style.errors import UserError


class EMAWeights(WeightAveraging):
    """Weights averaged with `decay` per optimiser step (the average spans ~1 / (1 - decay) steps), from the
    first step on. Updated once per Lightning batch: use `data.loader.minibatches_per_step=1` for one update a step."""

    def __init__(self, decay: float = 0.995) -> None:
        if not 0.0 <= decay < 1.0:
            raise UserError(f"callbacks.weight_average.decay={decay} is outside [0.0, 1.0)", "e.g. 0.995")
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(decay))

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            check_checkpoint(trainer)
        super().setup(trainer, pl_module, stage)

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn == TrainerFn.FITTING:  # a resumed fit: raw weights to train on, the average to go on with
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
        # test / validate / predict: the checkpoint's state_dict, the averaged weights, is what is scored


def check_checkpoint(trainer: pl.Trainer) -> None:
    """A weights-only best checkpoint would hold the raw weights of the epoch whose averaged weights won on val."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.save_weights_only:
            raise UserError(
                f"the weight average needs full checkpoints, but {type(callback).__name__} has save_weights_only=true",
                "add callbacks.model_checkpoint.save_weights_only=false (experiment=best sets it)",
            )
