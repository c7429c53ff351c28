"""The three architectures: shapes, the DSAE loss formula, and that training lowers the loss."""

from __future__ import annotations

import pytest
import torch

from genre_style.models.autoencoder import Autoencoder
from genre_style.models.dsae import DeepSoftmaxAutoencoder
from genre_style.models.losses import classification_loss, gamma_mix, reconstruction_loss
from genre_style.models.two_layer import TwoLayerNet

COMMON = dict(input_dim=500, num_classes=4, class_names=["classical", "jazz", "pop", "metal"])


def _batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    # Low-rank inputs a 64-d bottleneck can reconstruct: a class prototype plus 8-d variation.
    prototypes = torch.randn(4, 500, generator=g)
    basis = torch.randn(8, 500, generator=g) / 8
    x = prototypes[y] + torch.randn(n, 8, generator=g) @ basis
    return x, y, torch.zeros(n, dtype=torch.long)


MODELS = {
    "two_layer": lambda: TwoLayerNet(**COMMON),
    "autoencoder": lambda: Autoencoder(**COMMON),
    "dsae": lambda: DeepSoftmaxAutoencoder(**COMMON),
}


@pytest.mark.parametrize("name", MODELS)
def test_loss_goes_down_over_a_few_steps(name):
    torch.manual_seed(0)
    model = MODELS[name]()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y, _ = _batch()
    model.train()
    losses = []
    for _ in range(30):
        loss = model.compute_losses(model(x), x, y)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_shapes_of_embeddings_logits_and_reconstruction():
    x, _, _ = _batch(8)
    dsae = DeepSoftmaxAutoencoder(**COMMON).eval()
    out = dsae(x)
    assert out.embedding.shape == (8, 64) and out.logits.shape == (8, 4) and out.reconstruction.shape == (8, 500)
    assert TwoLayerNet(**COMMON).embed(x).shape == (8, 128)
    ae = Autoencoder(**COMMON)
    assert ae.embed(x).shape == (8, 64)
    with pytest.raises(TypeError, match="no classifier"):
        ae.logits(x)


def test_layer_sizes_come_from_config():
    model = DeepSoftmaxAutoencoder(encoder_sizes=[100, 50], bottleneck=8, classifier_sizes=[16], **COMMON)
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    shapes = [(m.in_features, m.out_features) for m in linear]
    assert shapes == [(500, 100), (100, 50), (50, 8), (8, 50), (50, 100), (100, 500), (8, 16), (16, 4)]


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0])
def test_dsae_loss_is_the_gamma_mix_of_the_papers_terms(gamma):
    torch.manual_seed(0)
    model = DeepSoftmaxAutoencoder(gamma=gamma, dropout=0.0, **COMMON).eval()
    x, y, _ = _batch(16)
    out = model(x)
    losses = model.compute_losses(out, x, y)
    recon = ((x - out.reconstruction) ** 2).sum(dim=1).mean()  # ||x - g(f(x))||^2 per example
    ce = torch.nn.functional.cross_entropy(out.logits, y)
    torch.testing.assert_close(losses["loss"], gamma * recon + (1 - gamma) * ce)
    torch.testing.assert_close(losses["recon"], recon)
    torch.testing.assert_close(losses["ce"], ce)


def test_loss_building_blocks():
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    x_hat = torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    assert reconstruction_loss(x, x_hat).item() == pytest.approx((5 + 9) / 2)
    logits = torch.tensor([[10.0, 0.0]])
    assert classification_loss(logits, torch.tensor([0])).item() == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(ValueError, match="gamma"):
        gamma_mix(torch.tensor(1.0), torch.tensor(1.0), 1.5)
    with pytest.raises(ValueError, match="gamma"):
        DeepSoftmaxAutoencoder(gamma=-0.1, **COMMON)
