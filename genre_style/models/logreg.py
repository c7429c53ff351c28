"""The classical baseline inside the framework: scikit-learn's StandardScaler + LogisticRegression.

It runs through the same entry point, data, splits, metrics, plots and MLflow run as the learned models,
so every report shows where they stand against it. Lightning drives one epoch: the training steps only
collect the train clips, the epoch's end fits scikit-learn on them and copies the fitted pipeline into a
linear layer (the scaler folded into it), which validation, test, checkpoints and `embed` then use.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import torch

from genre_style.models.augment import Mixed
from genre_style.models.base import Batch, GenreModel, ModelOutputs, minibatches
from genre_style.models.losses import classification_loss


class Standardize(torch.nn.Module):
    """Flatten and z-score with the scaler's statistics (buffers, so checkpoints hold them)."""

    center: torch.Tensor
    scale: torch.Tensor

    def __init__(self, input_shape: Sequence[int], output_dim: int) -> None:
        super().__init__()
        self.register_buffer("center", torch.zeros(output_dim))
        self.register_buffer("scale", torch.ones(output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) - self.center) / self.scale


class LogisticRegressionBaseline(GenreModel):
    """Multinomial logistic regression on the (flattened, standardised) clip features; the embedding is the
    standardised input the classifier reads (`features=stats`: MFCC and log-mel statistics)."""

    reads_configured_encoder = False  # its encoder is the standardisation, whatever `encoder=` says

    def __init__(self, C: float = 1.0, max_iter: int = 2000, class_weight: str | None = None, **kwargs: Any) -> None:
        kwargs["encoder"] = {"_target_": f"{__name__}.Standardize"}
        kwargs["embedding_dim"] = math.prod(kwargs["input_shape"])
        super().__init__(**kwargs)
        self.save_hyperparameters(logger=False)
        self.C, self.max_iter, self.class_weight = C, max_iter, class_weight
        self.classifier = torch.nn.Linear(self.embedding_dim, self.num_classes)
        self._train_clips: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._fitted = False

    def forward(self, x: torch.Tensor) -> ModelOutputs:
        z = self.encoder(x)
        return ModelOutputs(embedding=z, logits=self.classifier(z))

    def compute_losses(
        self, out: ModelOutputs, x: torch.Tensor, y: torch.Tensor, mixed: Mixed | None = None
    ) -> dict[str, torch.Tensor]:
        assert out.logits is not None
        return {"loss": classification_loss(out.logits, y, mixed)}

    def training_step(self, batch: Batch | Iterable[Batch], batch_idx: int) -> None:
        if self._fitted:
            return
        for x, y, _ in minibatches(batch):
            self._train_clips.append((x.detach().flatten(1).cpu(), y.detach().cpu()))

    def on_train_epoch_end(self) -> None:
        """Fit once, on every train clip; later epochs (if any) find nothing new and keep the fit."""
        if self._train_clips:
            import numpy as np
            from sklearn.linear_model import LogisticRegression
            from sklearn.preprocessing import StandardScaler

            x = torch.cat([c[0] for c in self._train_clips]).numpy().astype(np.float64)
            y = torch.cat([c[1] for c in self._train_clips]).numpy()
            self._train_clips, self._fitted = [], True
            scaler = StandardScaler().fit(x)
            classifier = LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight=self.class_weight).fit(
                scaler.transform(x), y
            )
            coef, intercept = classifier.coef_, classifier.intercept_
            if coef.shape[0] == 1:  # scikit-learn's binary case: one row for class 1; softmax needs both
                coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
            encoder: Any = self.encoder
            with torch.no_grad():
                encoder.center.copy_(torch.as_tensor(scaler.mean_, dtype=torch.float32))
                encoder.scale.copy_(torch.as_tensor(scaler.scale_, dtype=torch.float32))
                self.classifier.weight.copy_(torch.as_tensor(coef, dtype=torch.float32))
                self.classifier.bias.copy_(torch.as_tensor(intercept, dtype=torch.float32))
                xt, yt = torch.as_tensor(x, dtype=torch.float32, device=self.device), torch.as_tensor(y, device=self.device)
                self._step((xt, yt, yt), "train")  # the fitted model's train loss and accuracy, logged below
            self.trainer.should_stop = True  # one fit is the whole training: stop after this epoch's validation
        super().on_train_epoch_end()

    def configure_optimizers(self) -> Any:
        import warnings

        warnings.filterwarnings("ignore", message=".*configure_optimizers.*returned .None.*")  # no optimiser is the point
        return None  # scikit-learn fits it: no gradient steps
