"""The paper's baseline: one hidden layer (128 tanh units) and a softmax classifier."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from genre_style.models.base import GenreModel, ModelOutputs
from genre_style.models.blocks import mlp
from genre_style.models.losses import classification_loss


class TwoLayerNet(GenreModel):
    """x -> hidden (the embedding) -> logits; trained on cross-entropy."""

    def __init__(self, hidden_sizes: Sequence[int] = (128,), activation: str = "tanh", dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters(logger=False, ignore=["optimizer"])  # a factory object: plain data only
        self.hidden = mlp([self.input_dim, *hidden_sizes], activation, dropout, last_activation=True)
        self.classifier = torch.nn.Linear(hidden_sizes[-1], self.num_classes)

    def forward(self, x: torch.Tensor) -> ModelOutputs:
        h = self.hidden(x)
        return ModelOutputs(embedding=h, logits=self.classifier(h))

    def compute_losses(self, out: ModelOutputs, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": classification_loss(out.logits, y)}
