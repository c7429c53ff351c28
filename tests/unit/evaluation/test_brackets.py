"""The brackets (genre_style/evaluation/brackets.py) in process: a labelled folder's clips embedded by the model, by the
same architecture with random weights and as `features=stats`, all on the same clips and scored on the same song
splits; folders that cannot be scored are refused in one line before any embedding is computed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from genre_style.data.audio import ClipSpec
from genre_style.errors import UserError
from genre_style.evaluation.brackets import (
    EMBEDDINGS,
    STATS_NAME,
    STATS_SETTINGS,
    downstream_after_training,
    labelled_clips,
    labelled_table,
    random_weights,
    three_embeddings,
)
from genre_style.evaluation.probes import PROTOCOL_METRICS, metric_key
from genre_style.inference import Embedder
from genre_style.models.dsae import DeepSoftmaxAutoencoder
from tests import checkpoints

SPEC = ClipSpec()  # the paper's front-end: 500 pooled samples a clip


def _checkpoint(folder: Path, seed: int = 0) -> Path:
    """A DSAE exactly as `random_weights(embedder, seed)` would build it, written as training writes it."""
    torch.manual_seed(seed)
    model = DeepSoftmaxAutoencoder(input_shape=SPEC.feature_shape, num_classes=4, class_names=checkpoints.GENRES)
    return checkpoints.save(model.eval(), SPEC, folder / "best.ckpt")


def test_a_folder_with_one_genre_is_refused(small_corpus):
    with pytest.raises(UserError, match="has 1 genre \\(jazz\\): a downstream evaluation needs at least two") as raised:
        labelled_table(small_corpus, ["jazz"], SPEC, None)
    assert "--genres" in raised.value.fix


def test_an_unknown_genre_is_named(small_corpus):
    with pytest.raises(UserError, match="polka"):
        labelled_table(small_corpus, ["jazz", "polka"], SPEC, None)


def test_a_genre_with_one_usable_song_is_refused(corpus_copy):
    for path in sorted((corpus_copy / "jazz").iterdir())[1:]:
        path.unlink()
    with pytest.raises(UserError, match="genre 'jazz' in .* has 1 usable song\\(s\\): song-level splits need 2 or more"):
        labelled_table(corpus_copy, ["classical", "jazz"], replace(SPEC, clips_per_track=1), None)


def test_the_three_embeddings_are_of_the_same_clips(small_corpus, tmp_path):
    embedder = Embedder.from_checkpoint(_checkpoint(tmp_path))
    genres, embeddings = three_embeddings(embedder, small_corpus, "all", clips_per_track=2, seed=1)
    assert genres == ["classical", "jazz", "metal", "pop"] and [e.name for e in embeddings] == list(EMBEDDINGS)
    model, untrained, stats = embeddings
    assert len(model.x) == 24 * 2  # 6 songs a genre, 2 clips each
    for other in (untrained, stats):
        assert np.array_equal(other.labels, model.labels) and np.array_equal(other.tracks, model.tracks)
    assert model.x.shape == untrained.x.shape == (48, embedder.model.embedding_dim)
    assert not np.allclose(model.x, untrained.x)  # seed 1: not the model's own initialisation
    table = labelled_clips(small_corpus, genres, replace(SPEC, clips_per_track=2, **STATS_SETTINGS), None)
    assert stats.name == STATS_NAME and np.array_equal(
        stats.x, table.features
    )  # the statistics as the classical baseline reads them


def test_random_weights_are_the_same_architecture_and_preprocessing_drawn_again(tmp_path):
    embedder = Embedder.from_checkpoint(_checkpoint(tmp_path, seed=0))
    again, other = random_weights(embedder, 0), random_weights(embedder, 1)
    assert type(again.model) is type(embedder.model) and again.preprocessing is embedder.preprocessing
    trained = embedder.model.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in again.model.state_dict().items())  # seed 0 drew these weights
    assert not all(torch.equal(trained[k], v) for k, v in other.model.state_dict().items())


@pytest.mark.slow  # 1.5 s of linear probes here, 4 s under load
def test_after_training_every_embedding_is_scored_on_the_same_splits(small_corpus, tmp_path):
    """A model that is its own random-weights bracket (seed 0 drew it) scores exactly as the bracket on every split and
    episode: the splits and episodes are shared, so differences between embeddings are paired."""
    out = tmp_path / "downstream"
    entry = {"root": str(small_corpus), "name": "small", "splits": 2, "episodes": 2, "clips_per_track": 2}
    metrics = downstream_after_training(_checkpoint(tmp_path), [entry], out, cache_dir=None, seed=0, brackets=[])
    saved = json.loads((out / "small.json").read_text())
    per_split = saved["per_split"]
    assert list(per_split) == list(EMBEDDINGS) and saved["root"] == str(small_corpus) and saved["n_clips"] == 48
    assert per_split["model"] == per_split["random weights"] != per_split[STATS_NAME]
    assert all(len(per_split[e][m]) == 2 for e in EMBEDDINGS for m in PROTOCOL_METRICS)
    for embedding in EMBEDDINGS:  # what MLflow gets: the mean over the splits, per embedding and protocol
        for metric, values in per_split[embedding].items():
            assert metrics[f"downstream/small/{metric_key(embedding)}/{metric}"] == pytest.approx(np.mean(values))
    table = (out / "small.md").read_text()
    assert "# Frozen embeddings on `small`: classical, jazz, metal, pop (24 songs, 48 clips)" in table
    assert "| model - random weights | +0.0 [+0.0, +0.0] |" in table
