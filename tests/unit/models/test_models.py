"""The objectives on every encoder: shapes, the DSAE loss formula, and that training lowers the loss."""

from __future__ import annotations

import pytest
import torch

from genre_style.models.autoencoder import Autoencoder
from genre_style.models.dsae import DeepSoftmaxAutoencoder
from genre_style.models.encoders import mlp_encoder
from genre_style.models.losses import classification_loss, reconstruction_loss
from genre_style.models.two_layer import TwoLayerNet

COMMON = dict(input_shape=(500,), num_classes=4, class_names=["classical", "jazz", "pop", "metal"])


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


@pytest.mark.slow  # in-process training steps (seconds each): the full suite runs them, `make test-fast` stays unit tests
@pytest.mark.parametrize("name", MODELS)
def test_loss_goes_down_over_a_few_steps(name):
    torch.manual_seed(0)
    model = MODELS[name]()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y, _ = _batch()
    losses = _train(model, x, y, optimizer, steps=30)
    assert losses[-1] < 0.7 * losses[0]


def _train(model, x, y, optimizer, steps):
    """Plain optimiser steps on one batch; the loss after each."""
    model.train()
    losses = []
    for _ in range(steps):
        loss = model.compute_losses(model(x), x, y)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


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
    model = DeepSoftmaxAutoencoder(encoder=mlp_encoder([100, 50]), embedding_dim=8, classifier_sizes=[16], **COMMON)
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
    assert reconstruction_loss(x, x_hat, "mean").item() == pytest.approx((1 + 4 + 0 + 9) / 4)


# --- encoders x objectives: real inputs of each front-end's shape -------------------------------------------

from genre_style.models.logreg import LogisticRegressionBaseline  # noqa: E402

ENCODERS = {  # encoder node, per-clip input shape
    "mlp": (mlp_encoder([64]), (500,)),
    "logmel_cnn": ({"_target_": "genre_style.models.encoders.LogMelCNN", "channels": [8, 16]}, (32, 40)),
    "sample_cnn": ({"_target_": "genre_style.models.encoders.SampleCNN", "channels": [8, 16, 16]}, (2000,)),
}
OBJECTIVES = {"two_layer": TwoLayerNet, "autoencoder": Autoencoder, "dsae": DeepSoftmaxAutoencoder}


def _shaped_batch(shape, n=32, seed=0):
    """Two classes that differ in where their energy sits along the last (time) axis, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, *shape, generator=g) * 0.3
    half = shape[-1] // 2
    x[y == 0, ..., :half] += 1.0
    x[y == 1, ..., half:] += 1.0
    return x, y


@pytest.mark.slow  # in-process training steps (seconds each): the full suite runs them, `make test-fast` stays unit tests
@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_encoder_trains_under_every_objective(encoder, objective):
    torch.manual_seed(0)
    node, shape = ENCODERS[encoder]
    model = OBJECTIVES[objective](
        input_shape=shape,
        num_classes=2,
        class_names=["a", "b"],
        encoder=node,
        embedding_dim=16,
        **({"recon_reduction": "mean"} if objective != "two_layer" else {}),
    )
    x, y = _shaped_batch(shape)
    out = model.eval()(x)
    assert out.embedding.shape == (32, 16)
    if model.has_classifier:
        assert out.logits.shape == (32, 2)
    if model.has_decoder:
        assert out.reconstruction.shape == x.shape  # the decoder rebuilds the encoder's input, map or waveform
    losses = _train(model, x, y, torch.optim.Adam(model.parameters(), lr=3e-3), steps=25)
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0])
def test_dsae_loss_on_a_conv_encoder_is_the_formula(gamma):
    torch.manual_seed(0)
    node, shape = ENCODERS["logmel_cnn"]
    model = DeepSoftmaxAutoencoder(
        input_shape=shape,
        num_classes=2,
        class_names=["a", "b"],
        encoder=node,
        embedding_dim=16,
        gamma=gamma,
        recon_reduction="mean",
    ).eval()
    x, y = _shaped_batch(shape, 8)
    out = model(x)
    losses = model.compute_losses(out, x, y)
    recon = ((x - out.reconstruction) ** 2).mean()
    ce = torch.nn.functional.cross_entropy(out.logits, y)
    torch.testing.assert_close(losses["loss"], gamma * recon + (1 - gamma) * ce)


def test_conv_encoders_hear_patterns_not_positions():
    """A circular shift in time moves the CNN's pooled code far less than the MLP's."""
    torch.manual_seed(0)
    x = torch.randn(16, 32, 40)
    shifted = torch.roll(x, 7, dims=-1)
    cnn = DeepSoftmaxAutoencoder(
        input_shape=(32, 40), num_classes=2, class_names=["a", "b"], embedding_dim=16, encoder=ENCODERS["logmel_cnn"][0]
    ).eval()
    mlp = DeepSoftmaxAutoencoder(
        input_shape=(32, 40), num_classes=2, class_names=["a", "b"], embedding_dim=16, encoder=mlp_encoder([64])
    ).eval()

    def relative_change(model):
        a, b = model.embed(x), model.embed(shifted)
        return ((a - b).norm() / a.norm()).item()

    assert relative_change(cnn) < 0.5 * relative_change(mlp)


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_the_logistic_regression_baseline_is_scikit_learns_fit():
    """A real Lightning fit of `model=logreg` predicts what scikit-learn's pipeline predicts, and stops after one epoch."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from genre_style.data.clip_table import ClipTable
    from genre_style.data.datamodule import GenreDataModule
    from tests.conftest import quiet_trainer

    x, y = _shaped_batch((20,), n=120)
    tracks = np.arange(120) // 5
    table = ClipTable(
        features=x.numpy(),
        labels=y.numpy(),
        track_index=tracks,
        genres=["a", "b"],
        track_ids=[f"t{i}" for i in range(24)],
        track_labels=y.numpy()[::5].copy(),
    )
    dm = GenreDataModule.from_table(
        table,
        split={"mode": "segment", "balance": False},
        loader={"batch_size": 16, "minibatches_per_step": 2},
        seed=0,
    )
    dm.setup("fit")
    model = LogisticRegressionBaseline(input_shape=dm.input_shape, num_classes=2, class_names=["a", "b"])
    trainer = quiet_trainer(20)
    trainer.fit(model, datamodule=dm)
    assert trainer.current_epoch == 1  # one fit, then Lightning stops
    train_x, train_y = dm.tensors["train"][0].numpy().astype("float64"), dm.tensors["train"][1].numpy()
    scaler = StandardScaler().fit(train_x)
    reference = LogisticRegression(max_iter=2000).fit(scaler.transform(train_x), train_y)
    test_x = dm.tensors["test"][0]
    expected = reference.predict_proba(scaler.transform(test_x.numpy().astype("float64")))
    ours = torch.softmax(model.eval()(test_x).logits, dim=1).detach().numpy()
    assert abs(ours - expected).max() < 1e-4
    assert "train/acc" in trainer.callback_metrics and "val/acc" in trainer.callback_metrics


def test_band_mean_norm_makes_the_log_mel_cnn_deaf_to_a_recording_chains_eq():
    from genre_style.models.encoders import LogMelCNN

    torch.manual_seed(0)
    x = torch.randn(4, 32, 40)
    eq = torch.linspace(-2, 2, 32)[None, :, None] + torch.randn(4, 1, 1)  # a level and a tilt per clip
    normed = LogMelCNN((32, 40), 16, channels=[8, 16], dropout=0.0, band_mean_norm=True).eval()
    torch.testing.assert_close(normed(x + eq), normed(x), atol=1e-5, rtol=1e-4)
    plain = LogMelCNN((32, 40), 16, channels=[8, 16], dropout=0.0).eval()
    assert not torch.allclose(plain(x + eq), plain(x), atol=1e-3)


# --- the label-free song contrastive term ---------------------------------------------------------------------


def test_song_contrastive_loss_rewards_a_songs_clips_agreeing_and_is_the_formula():
    from genre_style.models.losses import song_contrastive_loss

    torch.manual_seed(0)
    songs = torch.tensor([0, 0, 1, 1, 2, 2])
    centres = torch.randn(3, 8) * 10
    together = centres[songs] + 0.01 * torch.randn(6, 8)
    scattered = torch.randn(6, 8)
    assert song_contrastive_loss(together, together, songs) < 0.5 * song_contrastive_loss(scattered, scattered, songs)
    # by hand for one anchor: positives are its other view and both views of its song's other clip
    z1, z2 = torch.randn(6, 8), torch.randn(6, 8)
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / 0.1
    sim.fill_diagonal_(float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    anchor0 = -log_prob[0, [1, 6, 7]].mean()
    ids = torch.cat([songs, songs])
    per_anchor = [-log_prob[i, [j for j in range(12) if j != i and ids[j] == ids[i]]].mean() for i in range(12)]
    torch.testing.assert_close(song_contrastive_loss(z1, z2, songs), torch.stack(per_anchor).mean())
    assert per_anchor[0] == anchor0


def test_the_contrastive_term_adds_to_any_models_loss_and_is_logged():
    torch.manual_seed(0)
    node, shape = ENCODERS["logmel_cnn"]
    kwargs = dict(input_shape=shape, num_classes=2, class_names=["a", "b"], encoder=node, embedding_dim=16)
    model = DeepSoftmaxAutoencoder(**kwargs, recon_reduction="mean", contrastive_weight=0.5, augment={"time_shift": True})
    assert model.logged_losses == ("loss", "recon", "ce", "contrastive")
    x, y = _shaped_batch(shape, 8)
    songs = torch.arange(8) // 2
    loss = model._step((x, y, songs), "train")
    stashed = model._pending["train"][-1][0]  # loss, recon, ce, contrastive
    torch.testing.assert_close(loss.detach(), 0.9 * stashed[1] + 0.1 * stashed[2] + 0.5 * stashed[3])
    loss.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    label_free = Autoencoder(**kwargs, recon_reduction="mean", contrastive_weight=1.0)  # no label anywhere in its loss
    assert label_free.logged_losses == ("loss", "recon", "contrastive")
    assert torch.isfinite(label_free._step((x, y, songs), "train"))
