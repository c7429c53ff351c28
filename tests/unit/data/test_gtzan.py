"""Finding GTZAN tracks in each layout, and the messages a user sees when the data is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from genre_style.data.corpus import discover_tracks, resolve_genres
from genre_style.data.gtzan import find_genre_root
from genre_style.errors import UserError
from tests.conftest import write_wav


def _corpus(root, genres=("jazz", "metal"), n=2):
    for g in genres:
        for i in range(n):
            write_wav(root / g / f"{g}.{i:05d}.wav", np.zeros(100))
    return root


def test_plain_layout(tmp_path):
    _corpus(tmp_path)
    tracks = discover_tracks(tmp_path, ["jazz", "metal"])
    assert [t.track_id for t in tracks] == ["jazz.00000", "jazz.00001", "metal.00000", "metal.00001"]
    assert {t.genre for t in tracks} == {"jazz", "metal"}


@pytest.mark.parametrize("nested", ["Data/genres_original", "genres"])
def test_kaggle_and_tarball_layouts(tmp_path, nested):
    _corpus(tmp_path / nested)
    assert find_genre_root(tmp_path) == tmp_path / nested
    assert len(discover_tracks(tmp_path, ["jazz"])) == 2


def test_au_files_are_found(tmp_path):
    (tmp_path / "pop").mkdir()
    (tmp_path / "pop" / "pop.00000.au").write_bytes(b"x")
    (tmp_path / "pop" / "readme.txt").write_text("not audio")
    assert [t.path.name for t in discover_tracks(tmp_path, ["pop"])] == ["pop.00000.au"]


def test_missing_root_names_the_path_and_how_to_get_gtzan(tmp_path):
    with pytest.raises(UserError) as err:
        find_genre_root(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)
    assert "data.source.root" in str(err.value) and "data=synthetic" in str(err.value)


def test_empty_root_is_an_error(tmp_path):
    with pytest.raises(UserError, match="no genre folders"):
        find_genre_root(tmp_path)


def test_unknown_genre_lists_those_found(tmp_path):
    _corpus(tmp_path)
    with pytest.raises(UserError) as err:
        resolve_genres(tmp_path, ["jazz", "polka"])
    assert "polka" in str(err.value) and "['jazz', 'metal']" in str(err.value)


def test_all_selects_every_genre_found(tmp_path):
    _corpus(tmp_path, genres=("rock", "blues", "pop"))
    assert resolve_genres(tmp_path, "all") == ["blues", "pop", "rock"]
    assert resolve_genres(tmp_path, ["all"]) == ["blues", "pop", "rock"]
