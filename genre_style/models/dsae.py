"""The Deep Softmax Autoencoder: an autoencoder whose bottleneck also feeds a softmax classifier."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from genre_style.models.augment import Mixed
from genre_style.models.autoencoder import Autoencoder
from genre_style.models.base import GenreModel, ModelOutputs
from genre_style.models.blocks import mlp
from genre_style.models.losses import classification_loss, gamma_mix, reconstruction_loss


class DeepSoftmaxAutoencoder(Autoencoder):
    """Trained on gamma * ||x - g(f(x))||^2 + (1 - gamma) * CE(h(f(x)), y)."""

    has_classifier = True
    has_decoder = True

    def __init__(
        self,
        gamma: float = 0.9,
        classifier_sizes: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(activation=activation, dropout=dropout, **kwargs)
        self.save_hyperparameters(logger=False)
        self.gamma = gamma
        self.classifier = mlp([self.embedding_dim, *classifier_sizes, self.num_classes], activation, dropout)

    @property
    def loss_names(self) -> tuple[str, ...]:
        return ("loss", "recon", "ce")

    def forward(self, x: torch.Tensor) -> ModelOutputs:
        z = self.encoder(x)
        return ModelOutputs(embedding=z, logits=self.classifier(z), reconstruction=self.decoder(z))

    def compute_losses(
        self, out: ModelOutputs, x: torch.Tensor, y: torch.Tensor, mixed: Mixed | None = None
    ) -> dict[str, torch.Tensor]:
        assert out.reconstruction is not None and out.logits is not None
        recon = reconstruction_loss(x, out.reconstruction, self.recon_reduction)
        ce = classification_loss(out.logits, y, mixed)
        return {"loss": gamma_mix(recon, ce, self.gamma), "recon": recon, "ce": ce}


__all__ = ["DeepSoftmaxAutoencoder", "GenreModel"]
