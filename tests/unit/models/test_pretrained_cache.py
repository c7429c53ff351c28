"""A frozen backbone is a cache (models/pretrained/cache.py): its outputs computed once per clip into the clip store,
reused by the next run, training on them giving what training on the clips gives; what changes a clip bypasses it."""

from __future__ import annotations

import logging

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from genre_style.data import front_ends
from genre_style.errors import UserError
from genre_style.models.pretrained import cache
from tests.conftest import FAST_RUN, quiet_trainer, run_cli
from tests.pretrained import needs_musicnn

ENCODER = "genre_style.models.pretrained.musicnn.MusicnnEncoder"
MUSICNN_DATA = dict(
    clips=dict(
        features=front_ends.MUSICNN,
        sample_rate=16000,
        segment_samples=16000,  # 63 frames (musicnn reads any): one clip from each 3-s song of the small corpus, ~1/3
        hop_samples=16000,  # of a 187-frame clip's time
        clips_per_track=1,
    ),
    loader=dict(batch_size=4, minibatches_per_step=2),
    progress=False,
    seed=0,
)


def _data(root, cache_dir, **overrides):
    from genre_style.data.datamodule import GenreDataModule

    store = {"cache_dir": str(cache_dir), "workers": 1}
    dm = GenreDataModule(source={"root": str(root)}, store=store, **{**MUSICNN_DATA, **overrides})
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _model(dm, model="two_layer", **encoder):
    from genre_style.models.dsae import DeepSoftmaxAutoencoder
    from genre_style.models.two_layer import TwoLayerNet

    augment = encoder.pop("augment", None)
    torch.manual_seed(0)  # the same random backbone and heads each time: no package needed
    cls = TwoLayerNet if model == "two_layer" else DeepSoftmaxAutoencoder
    return cls(
        input_shape=dm.input_shape,
        num_classes=dm.num_classes,
        class_names=dm.class_names,
        embedding_dim=16,
        encoder={"_target_": ENCODER, "pretrained": False, **encoder},
        augment=augment,
        optimizer={"_target_": "torch.optim.Adam", "lr": 1e-2},
    )


def _fit(model, dm) -> dict[str, torch.Tensor]:
    pl.seed_everything(0, verbose=False)
    trainer = quiet_trainer(1)
    trainer.fit(model, datamodule=dm)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.slow  # in-process, but over 1.5 s: the full suite runs it, `make test-fast` leaves it out
def test_the_second_run_computes_nothing_and_both_equal_a_run_on_the_clips(small_corpus, tmp_path):
    dm = _data(small_corpus, tmp_path)
    model = _model(dm)
    first = cache.serve_cached_features(model, dm, tmp_path)
    assert first is not None and first.computed == len(dm.table) == 24 and first.path is not None
    assert first.path.parent == tmp_path / "frozen" and first.path.name.startswith(dm.cache_key)
    assert model.encoder.cached_input
    x, y, songs = next(iter(dm.val_dataloader()))
    assert x.shape == (len(dm.indices["val"]), 200)  # the penultimate layer, not the (96, 187) log-mel
    assert torch.equal(y, dm.tensors["val"][1]) and torch.equal(songs, dm.tensors["val"][2])
    cached_weights = _fit(model, dm)
    # the model as saved reads clips: its embeddings of the clips are what it learned on the cached outputs
    cached_embedding = model.embed(x).detach()
    cache.stop_serving(model, dm)
    assert not model.encoder.cached_input and next(iter(dm.val_dataloader()))[0].shape[1:] == (96, 63)
    model.eval()
    torch.testing.assert_close(model.embed(dm.tensors["val"][0]).detach(), cached_embedding, atol=1e-5, rtol=1e-5)

    dm2 = _data(small_corpus, tmp_path)
    model2 = _model(dm2)
    second = cache.serve_cached_features(model2, dm2, tmp_path)
    assert second is not None and second.computed == 0 and second.path == first.path  # nothing computed
    reused_weights = _fit(model2, dm2)
    assert all(torch.equal(cached_weights[k], reused_weights[k]) for k in cached_weights)

    dm3 = _data(small_corpus, tmp_path)
    model3 = _model(dm3, cache=False)
    assert cache.serve_cached_features(model3, dm3, tmp_path) is None and not model3.encoder.cached_input
    on_clips = _fit(model3, dm3)  # the backbone runs at every step
    for k in cached_weights:
        torch.testing.assert_close(on_clips[k], cached_weights[k], atol=1e-5, rtol=1e-4)


def test_the_key_holds_the_weights_and_the_layer(small_corpus, tmp_path):
    from genre_style.models.pretrained.musicnn import MusicnnEncoder

    torch.manual_seed(0)
    penultimate = MusicnnEncoder((96, 187), 8, pretrained=False)
    torch.manual_seed(0)
    mean_pool = MusicnnEncoder((96, 187), 8, layer="mean_pool", pretrained=False)
    torch.manual_seed(0)
    max_pool = MusicnnEncoder((96, 187), 8, layer="max_pool", pretrained=False)
    torch.manual_seed(1)
    other = MusicnnEncoder((96, 187), 8, pretrained=False)
    keys = {cache.identity(e.frozen_backbone()) for e in (penultimate, mean_pool, max_pool, other)}
    assert len(keys) == 4  # mean_pool and max_pool share every weight: the layer tells them apart
    torch.manual_seed(0)
    assert cache.identity(MusicnnEncoder((96, 187), 8, pretrained=False).frozen_backbone()) in keys  # stable
    # a backbone that learns is no cache
    assert MusicnnEncoder((96, 187), 8, freeze="top_k", pretrained=False).frozen_backbone() is None


@pytest.mark.parametrize(
    "model, encoder, reason",
    [
        ("dsae", {}, "reconstructs the clips"),
        ("two_layer", {"augment": {"freq_masks": 2}}, "augmentation changes the clips"),
    ],
)
def test_what_changes_or_reads_a_clip_bypasses_the_cache_in_one_line(small_corpus, tmp_path, caplog, model, encoder, reason):
    dm = _data(small_corpus, tmp_path)
    built = _model(dm, model, **dict(encoder))
    with caplog.at_level(logging.WARNING, logger=cache.__name__):
        assert cache.serve_cached_features(built, dm, tmp_path) is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert reason in line and "not cached" in line and not built.encoder.cached_input
    assert not (tmp_path / "frozen").exists()
    # cache=true asks for it: refused, naming the way out
    required = _model(dm, model, cache=True, **dict(encoder))
    with pytest.raises(UserError, match=f"model.encoder.cache=true.*{reason}"):
        cache.serve_cached_features(required, dm, tmp_path)


def test_a_bad_cache_setting_is_one_line():
    from genre_style.models.pretrained.musicnn import MusicnnEncoder

    with pytest.raises(UserError, match="model.encoder.cache='sometimes' is not auto, true or false"):
        MusicnnEncoder.check_settings({"cache": "sometimes", "pretrained": False})
    assert cache.checked_setting("false") is False and cache.checked_setting("auto") == "auto"
    # true with a backbone that fine-tunes: refused before any audio is read (it used to be ignored silently)
    for freeze in ("top_k", "none"):
        with pytest.raises(UserError, match=f"model.encoder.cache=true, but model.encoder.freeze={freeze}"):
            MusicnnEncoder.check_settings({"cache": True, "freeze": freeze, "pretrained": False})
    assert cache.checked_setting(True, "all") is True and cache.checked_setting("auto", "none") == "auto"
    from genre_style.models.pretrained.hf import HFEncoder
    from tests.fixtures.hf_tiny import FOLDER as HF_TINY

    with pytest.raises(UserError, match="model.encoder.cache=true, but model.encoder.freeze=none"):
        HFEncoder.check_settings({"model": str(HF_TINY), "cache": True, "freeze": "none"})


@needs_musicnn
@pytest.mark.slow
def test_a_training_run_fills_the_cache_and_the_next_reuses_it(tmp_path):
    """`python -m genre_style.train model=two_layer encoder=musicnn features=musicnn_mel` twice on one cache folder."""
    args = [
        *FAST_RUN,
        "model=two_layer",
        "encoder=musicnn",
        "features=musicnn_mel",
        "trainer.max_epochs=2",
        "evaluation.disentanglement=false",
        "evaluation.pretrained_brackets=[]",
    ]
    out = tmp_path / "out"
    first = run_cli(args, out)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "clips computed" in first.stderr + first.stdout
    (cached,) = (out / "cache" / "frozen").glob("*.npy")
    second = run_cli(args, out)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "cached outputs of 24 clips reused" in second.stderr + second.stdout
    assert np.load(cached).shape == (24, 200)


def test_a_fill_runs_where_asked_and_leaves_the_backbone_as_it_was():
    """The fill picks a GPU where there is one (cache.compute_device; CPU here) and puts the module back."""
    from genre_style.models.pretrained.musicnn import MusicnnEncoder

    torch.manual_seed(0)
    encoder = MusicnnEncoder((96, 63), 8, pretrained=False)
    backbone = encoder.frozen_backbone()
    clips = np.random.default_rng(0).standard_normal((5, 96, 63)).astype(np.float32)
    encoder.train()
    default = cache.compute(backbone, clips)
    assert cache.compute_device(torch.device("cpu")) == (
        torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    )
    np.testing.assert_allclose(cache.compute(backbone, clips, device="cpu"), default, rtol=1e-4, atol=1e-5)
    assert next(backbone.module.parameters()).device.type == "cpu" and backbone.module.training is True
