"""Losses that compose: reconstruction, cross-entropy, and the DSAE's gamma mix of the two."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genre_style.models.augment import Mixed

REDUCTIONS = ("sum", "mean")


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """The paper's ||x - g(f(x))||^2: squared L2 per example, summed over its features (`sum`) or averaged
    (`mean`, which keeps the term on the cross-entropy's scale for large inputs such as log-mel maps),
    then averaged over the batch."""
    return reconstruction_errors(x, x_hat, reduction).mean()


def reconstruction_errors(x: torch.Tensor, x_hat: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Each clip's squared error, summed or averaged over its features: `[B]`."""
    per_feature = (x - x_hat).pow(2).flatten(1)
    if reduction == "sum":
        return per_feature.sum(dim=1)
    if reduction == "mean":
        return per_feature.mean(dim=1)
    raise ValueError(f"unknown reconstruction reduction {reduction!r}; choose from {REDUCTIONS}")


def classification_loss(logits: torch.Tensor, y: torch.Tensor, mixed: Mixed | None = None) -> torch.Tensor:
    """Softmax cross-entropy, averaged over the batch; under mixup, the same blend of both clips' labels."""
    if mixed is None:
        return F.cross_entropy(logits, y)
    return mixed.lam * F.cross_entropy(logits, y) + (1 - mixed.lam) * F.cross_entropy(logits, y[mixed.perm])


def gamma_mix(reconstruction: torch.Tensor, cross_entropy: torch.Tensor, gamma: float) -> torch.Tensor:
    """The DSAE objective: gamma * reconstruction + (1 - gamma) * cross-entropy."""
    return gamma * reconstruction + (1.0 - gamma) * cross_entropy
