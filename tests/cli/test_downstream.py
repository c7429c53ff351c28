"""Frozen-embedding protocols on embeddings whose answers are known, and the CLI's one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from genre_style.evaluation.probes import (
    ClipEmbeddings,
    knn_accuracy,
    linear_probe,
    prototype_accuracy,
    same_song_retrieval,
    score_embeddings,
    song_splits,
)

GENRES, SONGS, CLIPS = 4, 8, 5  # per genre, per song


def _corpus(separation: float, song_spread: float = 0.0, dim: int = 16, seed: int = 0) -> ClipEmbeddings:
    """Clips around a genre centre (`separation` apart) and a song offset (`song_spread`), unit noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(GENRES), SONGS * CLIPS)
    tracks = np.repeat(np.arange(GENRES * SONGS), CLIPS)
    centres = rng.standard_normal((GENRES, dim)) * separation
    songs = rng.standard_normal((GENRES * SONGS, dim)) * song_spread
    x = centres[labels] + songs[tracks] + rng.standard_normal((len(labels), dim))
    return ClipEmbeddings(f"sep{separation}", x, labels, tracks)


def test_song_splits_never_share_a_song_and_keep_every_genre():
    e = _corpus(1.0)
    for train, test in song_splits(e.tracks, e.labels, 5, 0.3, seed=1):
        assert not set(train) & set(test) and len(train) + len(test) == GENRES * SONGS
        for songs in (train, test):
            assert set(e.labels[np.isin(e.tracks, songs)]) == set(range(GENRES))


def test_separable_genres_score_perfectly_and_noise_scores_chance():
    clean, noise = _corpus(20.0), _corpus(0.0)
    train_songs, test_songs = song_splits(clean.tracks, clean.labels, 1, 0.3, seed=0)[0]
    train, test = np.isin(clean.tracks, train_songs), np.isin(clean.tracks, test_songs)
    assert linear_probe(clean, train, test) == (1.0, 1.0)
    assert knn_accuracy(clean, train, test) == 1.0
    rng = np.random.default_rng(0)
    assert prototype_accuracy(clean, train_songs, test, shots=5, episodes=10, rng=rng) == 1.0
    chance = 1 / GENRES
    assert abs(knn_accuracy(noise, train, test) - chance) < 0.2
    assert abs(prototype_accuracy(noise, train_songs, test, 1, 50, rng) - chance) < 0.1


def test_same_song_retrieval_finds_a_songs_own_clips_when_songs_differ():
    distinct = _corpus(0.0, song_spread=20.0)
    assert same_song_retrieval(distinct) == pytest.approx(((CLIPS - 1) / 5, 1.0))  # a song has 4 other clips
    alike = _corpus(0.0, song_spread=0.0)
    p_at_5, mean_ap = same_song_retrieval(alike)
    assert p_at_5 < 0.3 and mean_ap < 0.3  # chance: 4 of the other 159 clips


@pytest.mark.slow  # in-process, but over 1.5 s: the full suite runs it, `make test-fast` leaves it out
def test_every_embedding_is_scored_on_the_same_splits_and_differences_are_paired():
    good, bad = _corpus(3.0), _corpus(0.3)
    good.name, bad.name = "model", "features=stats"
    result = score_embeddings([good, bad], list("abcd"), n_splits=4, episodes=5)
    assert len(result.per_split["model"]["probe_clip_acc"]) == 4
    diff = result.difference("model", "features=stats", "probe_clip_acc")
    expected = np.subtract(result.per_split["model"]["probe_clip_acc"], result.per_split["features=stats"]["probe_clip_acc"])
    assert diff.n == 4 and diff.mean == pytest.approx(expected.mean()) and diff.low > 0
    table = result.markdown()
    assert "| model - features=stats |" in table and "5-shot prototypes" in table
    assert result.metrics("downstream/x")["downstream/x/model/proto_5shot_acc"] == pytest.approx(
        np.mean(result.per_split["model"]["proto_5shot_acc"])
    )
    misaligned = ClipEmbeddings("other", good.x[:-1], good.labels[:-1], good.tracks[:-1])
    with pytest.raises(ValueError, match="not on the same clips"):
        score_embeddings([good, misaligned], list("abcd"))


# --- the CLI's bad inputs: one line each, no traceback ------------------------------------------------------------


def _cli(argv, capsys):
    from genre_style.downstream import main

    code = main(argv)
    return code, capsys.readouterr().err


def test_a_folder_with_one_genre_is_one_line(small_corpus, tmp_path, capsys, tiny_checkpoint):
    code, err = _cli([str(tiny_checkpoint), str(small_corpus), "--genres", "jazz", "--out", str(tmp_path)], capsys)
    assert code != 0 and "needs at least two" in err and "Traceback" not in err


def test_an_unknown_genre_is_one_line(small_corpus, tmp_path, capsys, tiny_checkpoint):
    code, err = _cli([str(tiny_checkpoint), str(small_corpus), "--genres", "jazz,polka", "--out", str(tmp_path)], capsys)
    assert code != 0 and "polka" in err and "Traceback" not in err


def test_a_file_that_is_not_a_model_is_one_line(small_corpus, tmp_path, capsys):
    fake = tmp_path / "model.ckpt"
    fake.write_text("not a checkpoint")
    code, err = _cli([str(fake), str(small_corpus)], capsys)
    assert code != 0 and "model.ckpt" in err and "Traceback" not in err


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A checkpoint as training writes one (the model, its class names, the data module's preprocessing)."""
    import torch

    from genre_style.models.dsae import DeepSoftmaxAutoencoder

    model = DeepSoftmaxAutoencoder(input_shape=(500,), num_classes=4, class_names=["classical", "jazz", "pop", "metal"])
    path = tmp_path / "tiny.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "genre_style": {"model_class": "genre_style.models.dsae.DeepSoftmaxAutoencoder", "class_names": model.class_names},
            "GenreDataModule": {"spec": {"features": "raw_pool", "clips_per_track": 3}},
        },
        path,
    )
    return path
