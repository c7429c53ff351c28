"""Losses that compose: reconstruction, cross-entropy, and the DSAE's gamma mix of the two."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """The paper's ||x - g(f(x))||^2: squared L2 per example (summed over features), averaged over the batch."""
    return (x - x_hat).pow(2).sum(dim=1).mean()


def classification_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy, averaged over the batch."""
    return F.cross_entropy(logits, y)


def gamma_mix(reconstruction: torch.Tensor, cross_entropy: torch.Tensor, gamma: float) -> torch.Tensor:
    """The DSAE objective: gamma * reconstruction + (1 - gamma) * cross-entropy."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    return gamma * reconstruction + (1.0 - gamma) * cross_entropy
