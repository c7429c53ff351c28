"""What every genre model shares: the train/val/test steps, metrics, optimiser and the embed/logits API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import lightning.pytorch as pl
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassPrecision, MulticlassRecall
from torchmetrics.wrappers import ClasswiseWrapper

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (x [B, D] float32, y [B] int64, track index [B] int64)


@dataclass
class ModelOutputs:
    """One forward pass: the embedding always; logits and reconstruction where the model has them."""

    embedding: torch.Tensor
    logits: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None


class GenreModel(pl.LightningModule):
    """Base LightningModule. Subclasses build layers, `forward -> ModelOutputs` and `compute_losses`."""

    has_classifier: bool = True
    has_decoder: bool = False

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        class_names: Sequence[str],
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.num_classes = num_classes
        self.class_names = list(class_names)
        self.optimizer_factory = optimizer
        if self.has_classifier:
            # "acc" is the plain share of correct clips (micro), the paper's accuracy; not the per-class mean.
            self.train_acc = MulticlassAccuracy(num_classes, average="micro")
            self.val_acc = MulticlassAccuracy(num_classes, average="micro")
            self.test_metrics = self._test_metrics(num_classes, self.class_names)

    @staticmethod
    def _test_metrics(num_classes: int, names: list[str]) -> MetricCollection:
        per_class = {
            kind: ClasswiseWrapper(cls(num_classes, average=None), labels=names, prefix=f"{kind}_")
            for kind, cls in (("precision", MulticlassPrecision), ("recall", MulticlassRecall), ("f1", MulticlassF1Score))
        }
        macro = {
            f"{kind}_macro": cls(num_classes, average="macro")
            for kind, cls in (("precision", MulticlassPrecision), ("recall", MulticlassRecall), ("f1", MulticlassF1Score))
        }
        return MetricCollection({"acc": MulticlassAccuracy(num_classes, average="micro"), **macro, **per_class})

    # --- the API other parts rely on ---------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> ModelOutputs:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute_losses(self, out: ModelOutputs, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return at least `loss` (what is minimised); extra entries are logged as components."""
        raise NotImplementedError  # pragma: no cover - abstract

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The encoding: the bottleneck of autoencoders, the hidden layer of the two-layer net."""
        return self(x).embedding

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out = self(x)
        if out.logits is None:
            raise TypeError(f"{type(self).__name__} has no classifier, so no logits")
        return out.logits

    # --- Lightning hooks ---------------------------------------------------------------------------

    def _step(self, batch: Batch, stage: str) -> tuple[torch.Tensor, ModelOutputs]:
        x, y, _ = batch
        out = self(x)
        losses = self.compute_losses(out, x, y)
        for name, value in losses.items():
            key = f"{stage}/{name}"
            self.log(key, value, on_step=False, on_epoch=True, prog_bar=(name == "loss"), batch_size=len(x))
        return losses["loss"], out

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, out = self._step(batch, "train")
        if self.has_classifier:
            self.train_acc(out.logits.detach(), batch[1])
            self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        _, out = self._step(batch, "val")
        if self.has_classifier:
            self.val_acc(out.logits, batch[1])
            self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        _, out = self._step(batch, "test")
        if self.has_classifier:
            self.test_metrics.update(out.logits, batch[1])

    def on_test_epoch_end(self) -> None:
        if self.has_classifier:
            self.log_dict({f"test/{k}": v for k, v in self.test_metrics.compute().items()})
            self.test_metrics.reset()

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        x, y, track = batch
        out = self(x)
        result = {"embedding": out.embedding, "y": y, "track": track}
        if out.logits is not None:
            result["logits"] = out.logits
        if out.reconstruction is not None:
            result["reconstruction_error"] = (x - out.reconstruction).pow(2).sum(dim=1)
        return result

    def configure_optimizers(self) -> Any:
        factory = self.optimizer_factory or (lambda params: torch.optim.Adam(params, lr=1e-3))
        return factory(params=self.parameters())
