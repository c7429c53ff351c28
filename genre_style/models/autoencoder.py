"""The deep vanilla autoencoder: encoder to a bottleneck, mirrored decoder, reconstruction loss only."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from genre_style.models.base import GenreModel, ModelOutputs
from genre_style.models.blocks import mlp
from genre_style.models.losses import reconstruction_loss


class Autoencoder(GenreModel):
    """x -> f(x) = z (bottleneck, linear) -> g(z) ~ x. Unsupervised: the labels are only used for plots."""

    has_classifier = False
    has_decoder = True

    def __init__(
        self,
        encoder_sizes: Sequence[int] = (256, 128),
        bottleneck: int = 64,
        activation: str = "relu",
        dropout: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters(logger=False, ignore=["optimizer"])  # a factory object: plain data only
        self.encoder = mlp([self.input_dim, *encoder_sizes, bottleneck], activation, dropout)
        self.decoder = mlp([bottleneck, *reversed(encoder_sizes), self.input_dim], activation, dropout)

    @property
    def loss_names(self) -> tuple[str, ...]:
        return ("loss", "recon")

    def forward(self, x: torch.Tensor) -> ModelOutputs:
        z = self.encoder(x)
        return ModelOutputs(embedding=z, reconstruction=self.decoder(z))

    def compute_losses(self, out: ModelOutputs, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        recon = reconstruction_loss(x, out.reconstruction)
        return {"loss": recon, "recon": recon}
