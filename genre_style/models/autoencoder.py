"""The deep vanilla autoencoder: an encoder to a bottleneck, an MLP decoder back to the input features."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from genre_style.models.augment import Mixed
from genre_style.models.base import GenreModel, ModelOutputs
from genre_style.models.encoders import MLPDecoder
from genre_style.models.losses import REDUCTIONS, reconstruction_loss


class Autoencoder(GenreModel):
    """x -> f(x) = z (bottleneck, linear) -> g(z) ~ x. Unsupervised: the labels are only used for plots.

    The decoder mirrors an MLP encoder's layers (the paper's 500-256-128-64-128-256-500); for a conv encoder
    it is an MLP with `decoder_sizes` hidden layers back to the flattened input map or waveform.
    """

    has_classifier = False
    has_decoder = True

    def __init__(
        self,
        activation: str = "relu",
        dropout: float = 0.1,
        decoder_sizes: Sequence[int] | None = None,
        recon_reduction: str = "sum",
        **kwargs: Any,
    ) -> None:
        if recon_reduction not in REDUCTIONS:
            raise ValueError(f"unknown recon_reduction {recon_reduction!r}; choose from {REDUCTIONS}")
        super().__init__(**kwargs)
        self.save_hyperparameters(logger=False)
        self.recon_reduction = recon_reduction
        hidden = list(decoder_sizes) if decoder_sizes is not None else self.encoder.decoder_hidden_sizes()
        self.decoder = MLPDecoder(self.embedding_dim, self.input_shape, hidden, activation, dropout)

    @property
    def loss_names(self) -> tuple[str, ...]:
        return ("loss", "recon")

    def forward(self, x: torch.Tensor) -> ModelOutputs:
        z = self.encoder(x)
        return ModelOutputs(embedding=z, reconstruction=self.decoder(z))

    def compute_losses(
        self, out: ModelOutputs, x: torch.Tensor, y: torch.Tensor, mixed: Mixed | None = None
    ) -> dict[str, torch.Tensor]:
        assert out.reconstruction is not None
        recon = reconstruction_loss(x, out.reconstruction, self.recon_reduction)
        return {"loss": recon, "recon": recon}
