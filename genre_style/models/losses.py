"""Losses that compose: reconstruction, cross-entropy, the DSAE's gamma mix of the two, and a label-free song
contrastive term that any model can add (`model.contrastive_weight`)."""

from __future__ import annotations

import math

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
    """Softmax cross-entropy, averaged over the clips with a genre; under mixup, the same blend of both clips'
    labels. A negative label marks a clip without one (`data.source.unlabelled`): it adds nothing, and a batch of such
    clips alone gives 0 (with a gradient path), so only the label-free terms train on it."""
    if mixed is None:
        return _labelled_cross_entropy(logits, y)
    return mixed.lam * _labelled_cross_entropy(logits, y) + (1 - mixed.lam) * _labelled_cross_entropy(logits, y[mixed.perm])


def _labelled_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    labelled = y >= 0
    if bool(labelled.all()):
        return F.cross_entropy(logits, y)
    if not bool(labelled.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[labelled], y[labelled])


def song_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor, songs: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """A label-free term: NT-Xent (SimCLR) over two views `[B, D]` of a batch of clips, where a clip's positives are
    its other view and both views of every other clip of the same song in the batch (`songs` `[B]`, ids); all else
    is a negative. What it learns is what a song keeps from clip to clip and under augmentation: its style. The
    mean over the 2B anchors of -log(sum of positives' softmax weight / their count), as in SupCon."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    ids = torch.cat([songs, songs])
    itself = torch.eye(len(z), dtype=torch.bool, device=z.device)
    similarity = (z @ z.T / temperature).masked_fill(itself, float("-inf"))
    positives = (ids[:, None] == ids[None, :]) & ~itself
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    return -(log_prob.masked_fill(~positives, 0.0).sum(dim=1) / positives.sum(dim=1)).mean()


def gamma_mix(reconstruction: torch.Tensor, cross_entropy: torch.Tensor, gamma: float) -> torch.Tensor:
    """The DSAE objective: gamma * reconstruction + (1 - gamma) * cross-entropy."""
    return gamma * reconstruction + (1.0 - gamma) * cross_entropy


LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per example, in closed form, summed over latent dimensions: `[B]`."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def log_gaussian(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Element-wise log density of N(mean, exp(logvar)) at z (broadcasting)."""
    return -0.5 * (LOG_2PI + logvar + (z - mean).pow(2) / logvar.exp())


def tc_decomposition(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, dataset_size: int) -> dict[str, torch.Tensor]:
    """The beta-TCVAE's split of E[log q(z|x) - log p(z)] into index-code mutual information, total correlation
    and dimension-wise KL, with the minibatch-weighted sampling estimator of Chen et al. (2018):
    log q(z_i) ~ logsumexp_j log q(z_i | x_j) - log(B * N), and the same per dimension for the marginals.
    `z` holds one sample per example `[B, D]`; the three terms sum to the sampled KL exactly."""
    batch = z.shape[0]
    log_q_z_given_x = log_gaussian(z, mean, logvar).sum(dim=1)
    log_p_z = log_gaussian(z, torch.zeros_like(z), torch.zeros_like(z)).sum(dim=1)
    pairwise = log_gaussian(z[:, None, :], mean[None, :, :], logvar[None, :, :])  # [B, B, D]: log q(z_i,d | x_j)
    log_norm = math.log(batch * dataset_size)
    log_q_z = torch.logsumexp(pairwise.sum(dim=2), dim=1) - log_norm
    log_prod_q_zd = (torch.logsumexp(pairwise, dim=1) - log_norm).sum(dim=1)
    return {
        "mi": (log_q_z_given_x - log_q_z).mean(),
        "tc": (log_q_z - log_prod_q_zd).mean(),
        "dimwise_kl": (log_prod_q_zd - log_p_z).mean(),
    }
