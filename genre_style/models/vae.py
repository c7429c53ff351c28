"""Variational objectives in the same loss family: the VAE (reconstruction + beta KL) and the beta-TCVAE
(Chen et al., 2018: the KL split into index-code mutual information, total correlation and dimension-wise
KL, each with its own weight), optionally with the DSAE's classifier head and gamma mix on the latent mean.

The encoder (any of `encoder=`) gives a mean and a log-variance per latent dimension; the latent mean is the
embedding that metrics, plots and `embed` read.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from genre_style.models.augment import Mixed
from genre_style.models.autoencoder import Autoencoder
from genre_style.models.base import ModelOutputs
from genre_style.models.blocks import mlp
from genre_style.models.losses import classification_loss, gamma_mix, gaussian_kl, reconstruction_loss, tc_decomposition


class VariationalAutoencoder(Autoencoder):
    """recon + beta * KL(q(z|x) || N(0, I)), the KL weight warmed up linearly over `kl_warmup_epochs`.

    With `classifier=true`: gamma * (recon + beta * KL) + (1 - gamma) * CE(h(mu), y), the DSAE's mix.
    """

    encoder_outputs_per_latent = 2  # mean and log-variance

    def __init__(
        self,
        beta: float = 1.0,
        classifier: bool = False,
        gamma: float = 0.9,
        classifier_sizes: Sequence[int] = (),
        logvar_min: float = -10.0,
        logvar_max: float = 10.0,
        kl_warmup_epochs: int = 0,
        activation: str = "relu",
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        if logvar_min >= logvar_max:
            raise ValueError(f"logvar_min ({logvar_min}) must be below logvar_max ({logvar_max})")
        self.has_classifier = classifier  # before the base class builds the metrics it needs
        super().__init__(activation=activation, dropout=dropout, **kwargs)
        self.save_hyperparameters(logger=False)
        self.beta, self.gamma = beta, gamma
        self.logvar_min, self.logvar_max, self.kl_warmup_epochs = logvar_min, logvar_max, kl_warmup_epochs
        if classifier:
            self.classifier = mlp([self.embedding_dim, *classifier_sizes, self.num_classes], activation, dropout)

    @property
    def loss_names(self) -> tuple[str, ...]:
        return ("loss", "recon", "kl") + (("ce",) if self.has_classifier else ())

    def forward(self, x: torch.Tensor) -> ModelOutputs:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        logvar = logvar.clamp(self.logvar_min, self.logvar_max)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if self.training else mean  # reparameterised sample
        logits = self.classifier(mean) if self.has_classifier else None
        return ModelOutputs(embedding=mean, logits=logits, reconstruction=self.decoder(z), latent_sample=z, logvar=logvar)

    def kl_weight(self) -> float:
        """Linear warm-up of the KL terms from 0 to 1 over the first `kl_warmup_epochs` epochs."""
        if not self.kl_warmup_epochs or self._trainer is None:
            return 1.0
        return min(1.0, (self.current_epoch + 1) / (self.kl_warmup_epochs + 1))

    def regulariser(self, out: ModelOutputs) -> dict[str, torch.Tensor]:
        """The KL part of the objective: `total` (weighted) and its logged components."""
        assert out.logvar is not None
        kl = gaussian_kl(out.embedding, out.logvar).mean()
        return {"total": self.beta * kl, "kl": kl}

    def compute_losses(
        self, out: ModelOutputs, x: torch.Tensor, y: torch.Tensor, mixed: Mixed | None = None
    ) -> dict[str, torch.Tensor]:
        assert out.reconstruction is not None
        recon = reconstruction_loss(x, out.reconstruction, self.recon_reduction)
        parts = self.regulariser(out)
        unsupervised = recon + self.kl_weight() * parts.pop("total")
        losses = {"recon": recon, **parts}
        if self.has_classifier:
            assert out.logits is not None
            ce = classification_loss(out.logits, y, mixed)
            losses.update(loss=gamma_mix(unsupervised, ce, self.gamma), ce=ce)
        else:
            losses["loss"] = unsupervised
        return losses


class BetaTCVAE(VariationalAutoencoder):
    """recon + mi_weight * MI + tc_weight * TC + dimwise_kl_weight * dimension-wise KL, each estimated on the
    minibatch with minibatch-weighted sampling (Chen et al., 2018; the train split's size N is the data set size)."""

    def __init__(self, mi_weight: float = 1.0, tc_weight: float = 6.0, dimwise_kl_weight: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters(logger=False)
        self.mi_weight, self.tc_weight, self.dimwise_kl_weight = mi_weight, tc_weight, dimwise_kl_weight
        self.dataset_size: int | None = None  # the train split's size, read when training starts

    def on_train_start(self) -> None:
        super().on_train_start()
        self.dataset_size = len(self.trainer.train_dataloader.dataset)  # type: ignore[union-attr]

    @property
    def loss_names(self) -> tuple[str, ...]:
        return ("loss", "recon", "kl", "mi", "tc", "dimwise_kl") + (("ce",) if self.has_classifier else ())

    def regulariser(self, out: ModelOutputs) -> dict[str, torch.Tensor]:
        assert out.latent_sample is not None and out.logvar is not None
        size = self.dataset_size or len(out.embedding)  # outside a fit (tests, evaluation): the batch alone
        parts = tc_decomposition(out.latent_sample, out.embedding, out.logvar, size)
        total = self.mi_weight * parts["mi"] + self.tc_weight * parts["tc"] + self.dimwise_kl_weight * parts["dimwise_kl"]
        kl = gaussian_kl(out.embedding, out.logvar).mean()
        return {"total": total, "kl": kl, **parts}
