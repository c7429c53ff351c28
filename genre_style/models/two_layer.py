"""The paper's baseline: an encoder (one hidden layer of 128 tanh units in the paper) and a softmax classifier."""

from __future__ import annotations

from typing import Any

import torch

from genre_style.models.augment import Mixed
from genre_style.models.base import GenreModel, ModelOutputs
from genre_style.models.encoders import mlp_encoder
from genre_style.models.losses import classification_loss


class TwoLayerNet(GenreModel):
    """x -> encoder (its output is the embedding) -> logits; trained on cross-entropy alone."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("encoder", mlp_encoder([], "tanh", output_activation=True))  # the paper's 128 tanh units
        kwargs.setdefault("embedding_dim", 128)
        super().__init__(**kwargs)
        self.save_hyperparameters(logger=False)
        self.classifier = torch.nn.Linear(self.embedding_dim, self.num_classes)

    def forward(self, x: torch.Tensor) -> ModelOutputs:
        h = self.encoder(x)
        return ModelOutputs(embedding=h, logits=self.classifier(h))

    def compute_losses(
        self, out: ModelOutputs, x: torch.Tensor, y: torch.Tensor, mixed: Mixed | None = None
    ) -> dict[str, torch.Tensor]:
        assert out.logits is not None
        return {"loss": classification_loss(out.logits, y, mixed)}
