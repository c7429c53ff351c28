"""Splits: the honest track split never shares a song; the paper's segment split takes counts."""

from __future__ import annotations

import numpy as np
import pytest

from genre_style.data.splits import balance_classes, resolve_sizes, segment_split, track_split
from genre_style.errors import UserError
from tests.conftest import write_split_lists


def _clips(n_tracks_per_genre=8, genres=4, clips=5):
    track_labels = np.repeat(np.arange(genres), n_tracks_per_genre)
    track_index = np.repeat(np.arange(len(track_labels)), clips)
    return track_index, track_labels


def test_track_split_puts_each_track_in_exactly_one_split():
    track_index, track_labels = _clips()
    split = track_split(track_index, track_labels, [0.5, 0.25, 0.25], seed=1)
    tracks = {name: set(track_index[idx]) for name, idx in split.items()}
    assert not tracks["train"] & tracks["val"] and not tracks["train"] & tracks["test"] and not tracks["val"] & tracks["test"]
    assert sum(len(idx) for idx in split.values()) == len(track_index)
    for name in split:  # stratified: every genre in every split
        assert set(track_labels[list(tracks[name])]) == {0, 1, 2, 3}


def test_track_split_is_seeded():
    track_index, track_labels = _clips()
    a = track_split(track_index, track_labels, [0.5, 0.25, 0.25], seed=3)
    b = track_split(track_index, track_labels, [0.5, 0.25, 0.25], seed=3)
    c = track_split(track_index, track_labels, [0.5, 0.25, 0.25], seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_segment_split_takes_the_papers_counts():
    split = segment_split(8000, [6000, 1000, 1000], seed=0)
    assert [len(split[k]) for k in ("train", "val", "test")] == [6000, 1000, 1000]
    assert len(np.unique(np.concatenate(list(split.values())))) == 8000


def test_segment_split_lets_one_song_straddle_splits():
    track_index, _ = _clips(clips=20)
    split = segment_split(len(track_index), [0.75, 0.125, 0.125], seed=0)
    assert set(track_index[split["train"]]) & set(track_index[split["test"]])


def test_too_few_tracks_for_a_track_split_is_a_clear_error():
    track_index, track_labels = _clips(n_tracks_per_genre=2)
    with pytest.raises(UserError, match="at least 3 per genre"):
        track_split(track_index, track_labels, [0.5, 0.25, 0.25], seed=0, genre_names=["a", "b", "c", "d"])


def test_asking_for_more_clips_than_exist_is_a_clear_error():
    with pytest.raises(UserError, match="only 100 are available"):
        resolve_sizes([6000, 1000, 1000], 100, "clips")
    with pytest.raises(UserError, match="add up"):
        resolve_sizes([0.8, 0.2, 0.2], 100, "clips")


def test_balance_keeps_equal_clips_per_class():
    labels = np.array([0] * 10 + [1] * 4 + [2] * 7)
    keep = balance_classes(labels, seed=0)
    assert np.bincount(labels[keep]).tolist() == [4, 4, 4]


def test_fractions_that_add_up_to_one_use_every_track():
    # 100 tracks a genre at 0.75/0.125/0.125: 12.5 rounds to 12, and the left-over track goes to train
    track_index, track_labels = _clips(n_tracks_per_genre=100, clips=1)
    split = track_split(track_index, track_labels, [0.75, 0.125, 0.125], seed=0)
    assert sum(len(v) for v in split.values()) == 400
    assert [len(split[k]) for k in ("train", "val", "test")] == [304, 48, 48]


# --- listed (artist-filtered) splits on partial copies: the synthetic corpus with a fake list ---------------

SMALL_GENRES = ["classical", "jazz", "pop", "metal"]


def _listed(corpus, lists, genres=SMALL_GENRES):
    from genre_style.data.datamodule import GenreDataModule

    dm = GenreDataModule(
        source={"root": str(corpus), "genres": genres},
        split={"mode": "fault_filtered", "lists": str(lists)},
        store={"cache_dir": None, "workers": 1},
        progress=False,
    )
    dm.setup("fit")
    return dm


def test_a_partial_copy_keeps_the_listed_assignment_and_warns_what_is_absent(small_corpus, tmp_path, caplog):
    caplog.set_level("WARNING")
    dm = _listed(small_corpus, write_split_lists(tmp_path / "lists"))
    table = dm.table
    for name, numbers in (("train", {0, 1, 2}), ("val", {3}), ("test", {4, 5})):
        tracks = {table.track_ids[t] for t in table.track_index[dm.indices[name]]}
        assert tracks == {f"{g}.{n:05d}" for g in SMALL_GENRES for n in numbers}
    assert "8 of the 32 listed tracks" in caplog.text and "train 12, val 4, test 8 songs" in caplog.text


def test_a_genre_missing_from_val_or_test_is_a_warning_not_an_error(small_corpus, tmp_path, caplog):
    caplog.set_level("WARNING")
    dm = _listed(small_corpus, write_split_lists(tmp_path / "lists", skip=[("jazz", "test")]))
    assert len(dm.indices["test"]) > 0
    assert "genre 'jazz' has no test song" in caplog.text


@pytest.mark.parametrize(
    "lists,needle",
    [
        ({"test": (), "absent": (6, 7, 8)}, "the test split is empty"),
        ({"skip": [("pop", "train")]}, "genre 'pop' has no training song"),
        ({"train": (20,), "val": (21,), "test": (22,), "absent": ()}, "does not look like GTZAN"),
    ],
)
def test_a_listed_split_that_cannot_work_is_refused_naming_why(small_corpus, tmp_path, lists, needle):
    with pytest.raises(UserError, match=needle):
        _listed(small_corpus, write_split_lists(tmp_path / "lists", **lists))


def test_a_lists_folder_without_a_split_file_names_the_files_it_wants(small_corpus, tmp_path):
    lists = write_split_lists(tmp_path / "lists")
    (lists / "valid.txt").unlink()
    with pytest.raises(UserError, match="(?s)no list for the val split.*valid_filtered.txt or valid.txt or val.txt"):
        _listed(small_corpus, lists)
