"""The clip cache and preprocessing of damaged files, on real WAV files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from genre_style.data.audio import ClipSpec
from genre_style.data.clip_table import ClipTable
from genre_style.data.corpus import discover_tracks
from genre_style.data.datamodule import GenreDataModule
from genre_style.data.preprocess import build_clip_table, cache_key, load_or_build
from tests.conftest import write_wav

GENRES = ["classical", "jazz", "pop", "metal"]


@pytest.mark.parametrize(
    "spec", [ClipSpec(), ClipSpec(features="logmel", n_fft=1024, frame_hop=256, n_mels=64)], ids=["raw_pool", "logmel"]
)
def test_parallel_and_serial_preprocessing_agree_to_the_bit(small_corpus, spec):
    """The cache holds the same bits whatever the worker count (the mel projection's BLAS runs one thread)."""
    tracks = discover_tracks(small_corpus, GENRES)
    serial = build_clip_table(tracks, GENRES, spec, workers=1, progress=False)
    parallel = build_clip_table(tracks, GENRES, spec, workers=2, progress=False)
    np.testing.assert_array_equal(serial.features, parallel.features)
    assert serial.features.shape == (24 * 3, spec.feature_dim)  # 24 tracks x 3 clips of 3 s
    assert np.bincount(serial.labels).tolist() == [18, 18, 18, 18]


def test_cache_is_reused_and_keyed_by_files_and_settings(small_corpus, tmp_path):
    tracks = discover_tracks(small_corpus, GENRES)
    cache = tmp_path / "cache"
    first, path, hit = load_or_build(tracks, GENRES, ClipSpec(), cache, workers=1, progress=False)
    assert not hit and path.exists()
    second, path2, hit2 = load_or_build(tracks, GENRES, ClipSpec(), cache, workers=1, progress=False)
    assert hit2 and path2 == path
    np.testing.assert_array_equal(first.features, second.features)
    assert cache_key(tracks, GENRES, ClipSpec(pool=20)) != cache_key(tracks, GENRES, ClipSpec())
    assert not list(cache.glob("*.tmp"))


def test_a_changed_file_invalidates_the_cache(corpus_copy):
    tracks = discover_tracks(corpus_copy, GENRES)
    before = cache_key(tracks, GENRES, ClipSpec())
    os.utime(tracks[0].path, ns=(1, 1))
    assert cache_key(tracks, GENRES, ClipSpec()) != before


def test_a_damaged_cache_is_rebuilt_not_trusted(small_corpus, tmp_path):
    tracks = discover_tracks(small_corpus, GENRES)
    _, path, _ = load_or_build(tracks, GENRES, ClipSpec(), tmp_path, workers=1, progress=False)
    path.write_bytes(path.read_bytes()[:1000])  # as if cut short
    table, _, hit = load_or_build(tracks, GENRES, ClipSpec(), tmp_path, workers=1, progress=False)
    assert not hit and len(table) == 72
    assert ClipTable.load(path).features.shape == (72, 500)


def test_corrupt_short_and_empty_files_are_skipped_and_listed(corpus_copy):
    (corpus_copy / "jazz" / "jazz.00054.wav").write_text("<html>not a wav</html>")  # like Kaggle's broken file
    (corpus_copy / "pop" / "pop.00099.wav").write_bytes(b"")
    write_wav(corpus_copy / "metal" / "metal.00098.wav", np.zeros(11025))  # 0.5 s: shorter than a clip
    tracks = discover_tracks(corpus_copy, GENRES)
    table = build_clip_table(tracks, GENRES, ClipSpec(), workers=2, progress=False)
    skipped = {os.path.basename(s["path"]): s["reason"] for s in table.skipped}
    assert set(skipped) == {"jazz.00054.wav", "pop.00099.wav", "metal.00098.wav"}
    assert "too short" in skipped["metal.00098.wav"] and "unreadable" in skipped["jazz.00054.wav"]
    assert len(table.track_ids) == 24


def test_datamodule_batches_and_standardisation_fitted_on_train_only(small_corpus, tmp_path):
    dm = GenreDataModule(
        source={"root": str(small_corpus)},
        split={"sizes": [0.5, 0.25, 0.25]},
        loader={"standardize": True, "batch_size": 16},
        store={"cache_dir": str(tmp_path), "workers": 1},
        progress=False,
    )
    dm.prepare_data()
    dm.setup("fit")
    group = next(iter(dm.train_dataloader()))  # data.loader.minibatches_per_step minibatches per Lightning batch
    x, y, track = next(iter(group))
    assert x.shape == (16, 500) and x.dtype.is_floating_point and y.dtype == track.dtype
    train_x = dm.tensors["train"][0].numpy()
    np.testing.assert_allclose(train_x.mean(axis=0), 0, atol=1e-4)
    assert not np.allclose(dm.tensors["test"][0].numpy().mean(axis=0), 0, atol=1e-4)
    assert sum(len(dm.tensors[s][0]) for s in ("train", "val", "test")) == 72
    assert dm.state_dict()["standardize_mean"] is not None
    seen = torch.cat([track for group in dm.train_dataloader() for _, _, track in group])
    assert len(seen) == len(train_x)  # every training clip once an epoch
    assert sorted(seen.tolist()) == sorted(dm.tensors["train"][2].tolist())
