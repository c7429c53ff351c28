"""One progress bar for the whole fit, advancing by epochs, with the latest metrics beside it.

Why not Lightning's TQDMProgressBar: its per-batch updates and the validation bar it opens and closes every epoch
cost a few percent of a small model's epoch on a CPU (`python -m benchmarks.bench_train` with the bar on and off;
figures in docs/performance.md).
"""

from __future__ import annotations

import sys
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm


class EpochProgressBar(TQDMProgressBar):
    """`TQDMProgressBar` whose training bar counts epochs (`37/200 epochs [00:07<00:31]`), not batches.

    An epoch of these models is a fraction of a second and one to a few Lightning batches, so Lightning's
    per-epoch batch bar and the validation bar it opens and closes every epoch show nothing but flicker,
    and cost ~1.5 ms an epoch (1 % of an epoch at batch 256). This bar draws once per epoch, gives the
    run's ETA, and shows the metrics of the last complete epoch (train and val of the same epoch).
    `predict` draws nothing: after training, scoring predicts each split in a fraction of a second, and
    three bars of one batch each said nothing. Sanity checking, `validate` and `test` keep Lightning's bars.
    """

    def init_train_tqdm(self) -> Tqdm:
        trainer = self.trainer
        return Tqdm(
            desc="Training",
            unit="epoch",
            total=trainer.max_epochs if trainer.max_epochs not in (None, -1) else None,
            initial=trainer.current_epoch,
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            smoothing=0.3,
            file=sys.stdout,  # where Lightning's other bars go
        )

    def init_predict_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def on_train_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        self._show_completed_epochs(trainer)  # the previous epoch's metrics are all logged by now

    def on_train_batch_end(self, *_: Any, **__: Any) -> None:
        pass

    def on_train_epoch_end(self, *_: Any) -> None:
        pass  # the LightningModule logs its train metrics after the callbacks' hook: shown at the next start

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._show_completed_epochs(trainer)
        super().on_train_end(trainer, pl_module)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._fitting(trainer):
            self.val_progress_bar = Tqdm(disable=True)  # the inherited batch hooks then draw nothing
        else:
            super().on_validation_start(trainer, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._fitting(trainer):
            self.reset_dataloader_idx_tracker()
        else:
            super().on_validation_end(trainer, pl_module)

    @staticmethod
    def _fitting(trainer: pl.Trainer) -> bool:
        return trainer.state.fn == "fit" and not trainer.sanity_checking

    def _show_completed_epochs(self, trainer: pl.Trainer) -> None:
        bar = self.train_progress_bar
        if bar.disable or bar.n == trainer.current_epoch:
            return
        bar.n = trainer.current_epoch
        bar.set_postfix(self.get_metrics(trainer, trainer.lightning_module))  # redraws once
