"""The variational objectives and the disentanglement measures, against values known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genre_style.evaluation.disentanglement import active_dims, latent_genre_mi, mig
from genre_style.models.encoders import mlp_encoder
from genre_style.models.losses import gaussian_kl, log_gaussian, tc_decomposition
from genre_style.models.vae import BetaTCVAE, VariationalAutoencoder

COMMON = dict(input_shape=(40,), num_classes=2, class_names=["a", "b"], encoder=mlp_encoder([32]), embedding_dim=4)


def test_kl_is_the_closed_form_of_two_gaussians():
    torch.manual_seed(0)
    mean, logvar = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(5, 3), torch.ones(5, 3))
    torch.testing.assert_close(gaussian_kl(mean, logvar), torch.distributions.kl_divergence(q, p).sum(dim=1))


@pytest.mark.slow  # in-process, but over 1.5 s: the full suite runs it, `make test-fast` leaves it out
def test_tc_decomposition_on_known_gaussians():
    """Posteriors N(m_j, s^2), m_j ~ N(0, 1) independently per dimension, the batch as the data set: then
    q(z) = N(0, 1 + s^2) factorises (TC = 0), MI = D/2 log((1 + s^2) / s^2) and the dimension-wise KL is
    D * KL(N(0, 1 + s^2) || N(0, 1))."""
    torch.manual_seed(0)
    n, d, s = 3000, 2, 0.5
    mean = torch.randn(n, d, dtype=torch.float64)
    logvar = torch.full((n, d), math.log(s**2), dtype=torch.float64)
    z = mean + s * torch.randn(n, d, dtype=torch.float64)
    parts = tc_decomposition(z, mean, logvar, dataset_size=1)
    total = 1 + s**2
    assert parts["mi"].item() == pytest.approx(d / 2 * math.log(total / s**2), abs=0.05)
    assert abs(parts["tc"].item()) < 0.03
    assert parts["dimwise_kl"].item() == pytest.approx(d * 0.5 * (total - 1 - math.log(total)), abs=0.03)
    # The three terms sum to the sampled KL, E[log q(z|x) - log p(z)], exactly, whatever the estimator's bias.
    sampled_kl = (log_gaussian(z, mean, logvar) - log_gaussian(z, torch.zeros_like(z), torch.zeros_like(z))).sum(1).mean()
    torch.testing.assert_close(parts["mi"] + parts["tc"] + parts["dimwise_kl"], sampled_kl)
    # ... and that sampled KL estimates the closed form.
    assert sampled_kl.item() == pytest.approx(gaussian_kl(mean, logvar).mean().item(), abs=0.05)


def test_identical_posteriors_carry_no_information_about_the_input():
    mean = torch.tensor([[0.3, -1.0]]).repeat(64, 1)
    logvar = torch.full((64, 2), -1.0)
    z = mean + torch.randn(64, 2) * math.exp(-0.5)
    parts = tc_decomposition(z, mean, logvar, dataset_size=1)
    assert abs(parts["mi"].item()) < 1e-5 and abs(parts["tc"].item()) < 1e-5


def _batch(n=64):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 40, generator=g) * 0.3 + y[:, None].float()
    return x, y


@pytest.mark.slow  # in-process training steps (seconds each): the full suite runs them, `make test-fast` stays unit tests
@pytest.mark.parametrize("model_class", [VariationalAutoencoder, BetaTCVAE])
@pytest.mark.parametrize("classifier", [False, True])
def test_each_loss_term_falls_over_a_few_steps(model_class, classifier):
    torch.manual_seed(0)
    model = model_class(classifier=classifier, gamma=0.5, **COMMON)
    x, y = _batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = last = None
    for _ in range(60):
        losses = model.compute_losses(model(x), x, y)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        first = first or {k: v.item() for k, v in losses.items()}
        last = {k: v.item() for k, v in losses.items()}
    assert set(first) == set(model.loss_names)
    for name in ("loss", "recon") + (("ce",) if classifier else ()):
        assert last[name] < first[name], name


def test_the_objective_with_a_classifier_is_the_formula():
    torch.manual_seed(0)
    model = BetaTCVAE(classifier=True, gamma=0.3, mi_weight=0.5, tc_weight=4.0, dimwise_kl_weight=2.0, **COMMON)
    x, y = _batch(16)
    torch.manual_seed(1)
    out = model(x)
    losses = model.compute_losses(out, x, y)
    recon = ((x - out.reconstruction) ** 2).sum(dim=1).mean()
    parts = tc_decomposition(out.latent_sample, out.embedding, out.logvar, len(x))
    regulariser = 0.5 * parts["mi"] + 4.0 * parts["tc"] + 2.0 * parts["dimwise_kl"]
    ce = torch.nn.functional.cross_entropy(out.logits, y)
    torch.testing.assert_close(losses["loss"], 0.3 * (recon + regulariser) + 0.7 * ce)
    vae = VariationalAutoencoder(classifier=True, gamma=0.3, beta=2.0, **COMMON)
    out = vae(x)
    kl = gaussian_kl(out.embedding, out.logvar).mean()
    recon = ((x - out.reconstruction) ** 2).sum(dim=1).mean()
    torch.testing.assert_close(
        vae.compute_losses(out, x, y)["loss"], 0.3 * (recon + 2.0 * kl) + 0.7 * torch.nn.functional.cross_entropy(out.logits, y)
    )


def test_the_latent_mean_is_the_embedding_and_eval_is_deterministic():
    model = VariationalAutoencoder(**COMMON).eval()
    x, _ = _batch(8)
    a, b = model(x), model(x)
    assert torch.equal(a.embedding, b.embedding) and torch.equal(a.reconstruction, b.reconstruction)
    assert a.embedding.shape == (8, 4) and a.logits is None


# --- disentanglement ------------------------------------------------------------------------------------------


def test_mig_is_near_one_when_one_dimension_carries_genre_and_near_zero_when_none_does():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 4000)
    noise = rng.standard_normal((4000, 6))
    one = noise.copy()
    one[:, 2] = labels + 0.05 * rng.standard_normal(4000)
    assert mig(one, labels) > 0.9
    assert mig(noise, labels) < 0.05
    two = one.copy()
    two[:, 4] = one[:, 2]  # the same information in two dimensions: no gap
    assert mig(two, labels) < 0.05
    mi = latent_genre_mi(one, labels)
    assert mi.argmax() == 2 and mi[2] == pytest.approx(math.log(4), abs=0.02)


def test_active_dims_counts_dimensions_that_vary():
    codes = np.zeros((100, 4))
    codes[:, 0] = np.linspace(-1, 1, 100)
    codes[:, 3] = np.linspace(0, 0.01, 100)  # variance ~1e-5: inactive
    assert active_dims(codes) == 0.25
