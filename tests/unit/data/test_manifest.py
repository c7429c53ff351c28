"""Any labelled collection: manifests (CSV, Parquet), FMA's layout, artist-grouped splits; real training runs."""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genre_style.data.corpus import available_genres, discover_tracks
from genre_style.data.datamodule import GenreDataModule
from genre_style.data.fma import audio_path, genre_name, write_manifest
from genre_style.data.manifest import read_manifest
from genre_style.data.splits import group_split
from genre_style.errors import UserError
from tests.conftest import FAST_RUN, run_cli

GENRES = ("classical", "jazz", "metal", "pop")
# The small corpus without its generator settings: a GTZAN-layout folder of real WAV files, read from disk.
ON_DISK = [a for a in FAST_RUN if not a.startswith("data.source.synthetic") and a != "data=synthetic"]


def _songs(corpus: Path) -> list[Path]:
    return sorted(p for g in GENRES for p in (corpus / g).glob("*.wav"))


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def corpus_manifest(corpus: Path, out: Path, split_sizes: tuple[int, int, int] = (4, 1, 1)) -> Path:
    """The small corpus as a manifest: paths relative to it, a split per song (first 4 train, then val, test) and
    three artists a genre (two songs each)."""
    rows = []
    for genre in GENRES:
        for i, song in enumerate(sorted((corpus / genre).glob("*.wav"))):
            split = "train" if i < split_sizes[0] else "val" if i < split_sizes[0] + split_sizes[1] else "test"
            rows.append(
                {"path": str(song.relative_to(out.parent)), "genre": genre, "split": split, "artist": f"{genre}-{i // 2}"}
            )
    return write_csv(out, rows)


def test_a_csv_manifest_reports_each_bad_row_with_its_line_and_uses_the_rest(tmp_path, small_corpus, caplog):
    songs = _songs(small_corpus)
    rows = [{"path": str(p), "genre": p.parent.name, "split": "train"} for p in songs[:3]]
    rows += [
        {"path": str(tmp_path / "gone.wav"), "genre": "jazz", "split": "train"},  # line 5
        {"path": str(songs[3]), "genre": "", "split": "test"},  # line 6
        {"path": str(songs[4]), "genre": "jazz", "split": "holdout"},  # line 7
        {"path": str(songs[0]), "genre": "classical", "split": "val"},  # line 8: a repeat of line 2
        {"path": str(songs[5]), "genre": "classical", "split": "validation"},
    ]
    with caplog.at_level(logging.WARNING):
        manifest = read_manifest(write_csv(tmp_path / "m.csv", rows))
    assert [r.line for r in manifest.rows] == [2, 3, 4, 9] and manifest.rows[-1].split == "val"
    assert [line for line, _ in manifest.problems] == [5, 6, 7, 8]
    why = dict(manifest.problems)
    assert "does not exist" in why[5] and "empty genre" in why[6] and "holdout" in why[7] and "line 2" in why[8]
    assert "4 bad row(s)" in caplog.text and "line 5:" in caplog.text


def test_a_parquet_manifest_reads_like_its_csv(tmp_path, small_corpus):
    import pyarrow as pa
    import pyarrow.parquet as pq

    songs = _songs(small_corpus)[:4]
    pq.write_table(
        pa.table({"path": [str(p) for p in songs] + ["nowhere.wav"], "genre": [p.parent.name for p in songs] + ["pop"]}),
        tmp_path / "m.parquet",
    )
    manifest = read_manifest(tmp_path / "m.parquet")
    assert [r.path for r in manifest.rows] == songs and manifest.problems[0][0] == 5 and not manifest.has_split


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("file,label\na.wav,jazz\n", "lacks the column(s) ['path', 'genre']"),
        ("path,genre\nnowhere.wav,jazz\n", "has no usable row (1 bad, first: line 2: file 'nowhere.wav' does not exist)"),
    ],
)
def test_an_unusable_manifest_is_one_error_naming_it(tmp_path, text, needle):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(UserError, match=None) as caught:
        read_manifest(tmp_path / "m.csv")
    assert needle in str(caught.value) and "m.csv" in str(caught.value)


def test_genres_and_tracks_come_from_the_manifest(tmp_path, small_corpus):
    manifest = corpus_manifest(small_corpus, small_corpus.parent / "genres.csv")
    assert available_genres(manifest) == sorted(GENRES)
    tracks = discover_tracks(manifest, ["pop", "jazz"])
    assert [t.genre for t in tracks] == ["pop"] * 6 + ["jazz"] * 6
    assert tracks[0].track_id == "synthetic/pop/pop.00000" and tracks[0].split == "train" and tracks[0].group == "pop-0"


def test_an_artist_split_keeps_every_artist_in_one_split_and_each_genre_in_every_split():
    rng = np.random.default_rng(0)
    n_tracks = 120
    track_labels = np.arange(n_tracks) % 3
    artists = [f"a{label}-{rng.integers(8)}" for label in track_labels]  # 8 artists a genre, uneven song counts
    track_index = np.repeat(np.arange(n_tracks), 5)
    split = group_split(track_index, track_labels, artists, (0.7, 0.15, 0.15), seed=1)
    split_of_artist: dict[str, set[str]] = {}
    for name, clips in split.items():
        for t in np.unique(track_index[clips]):
            split_of_artist.setdefault(artists[t], set()).add(name)
    assert all(len(names) == 1 for names in split_of_artist.values())
    for name, clips in split.items():
        assert set(track_labels[track_index[clips]]) == {0, 1, 2}, name
    shares = [len(np.unique(track_index[split[n]])) / n_tracks for n in ("train", "val", "test")]
    assert shares[0] > 0.55 and min(shares[1:]) > 0.08
    again = group_split(track_index, track_labels, artists, (0.7, 0.15, 0.15), seed=1)
    assert all(np.array_equal(split[n], again[n]) for n in split)
    with pytest.raises(UserError, match="has 2 artist"):
        group_split(
            track_index, track_labels, [f"a{label}-{t % 2}" for t, label in enumerate(track_labels)], (0.7, 0.15, 0.15), 0
        )


def _module(root: Path, split: str) -> GenreDataModule:
    """Every genre of `root` on the `split` mode, read on one worker."""
    return GenreDataModule(
        source={"root": str(root), "genres": "all"},
        split={"mode": split},
        store={"cache_dir": None, "workers": 1},
        progress=False,
    )


def test_a_manifest_split_is_used_as_listed(tmp_path, small_corpus):
    manifest = corpus_manifest(small_corpus, small_corpus.parent / "splits.csv")
    dm = _module(manifest, "manifest")
    dm.setup()
    listed = {r.track_id: r.split for r in read_manifest(manifest).rows}
    assert {row["track_id"]: row["split"] for row in dm.split_tracks()} == listed


def test_a_split_that_needs_a_manifest_says_so(tmp_path, small_corpus):
    dm = _module(small_corpus, "artist")
    with pytest.raises(UserError, match="reads a manifest's artist column"):
        dm.setup()


def _trained_split(out: Path) -> dict[str, str]:
    (table,) = out.glob("runs/*/artifacts/data/split_tracks.csv")
    with open(table) as handle:
        return {row["track_id"]: row["split"] for row in csv.DictReader(handle)}


@pytest.mark.slow
def test_a_manifest_with_an_artist_split_trains_through_the_cli(tmp_path, small_corpus):
    manifest = corpus_manifest(small_corpus, small_corpus.parent / "artists.csv")
    args = [
        *ON_DISK,
        f"data.source.root={manifest}",
        "data.source.genres=all",
        "data.split.mode=artist",
        "data.split.sizes=[0.5,0.25,0.25]",
    ]
    result = run_cli([*args, "trainer.max_epochs=1"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    artist = {r.track_id: r.group for r in read_manifest(manifest).rows}
    split_of_artist: dict[str | None, set[str]] = {}
    for track_id, split in _trained_split(tmp_path).items():
        split_of_artist.setdefault(artist[track_id], set()).add(split)
    assert len(split_of_artist) == 12 and all(len(s) == 1 for s in split_of_artist.values())


@pytest.mark.slow
def test_a_bad_manifest_stops_the_cli_in_one_line(tmp_path):
    (tmp_path / "m.csv").write_text("file,label\na.wav,jazz\n")
    result = run_cli([*ON_DISK, f"data.source.root={tmp_path / 'm.csv'}", "data.source.genres=all"], tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "lacks the column(s) ['path', 'genre']" in result.stderr and "fix:" in result.stderr


def fma_collection(root: Path, corpus: Path) -> tuple[Path, Path]:
    """The small corpus in FMA's layout: MP3s at `<audio>/000/000NNN.mp3` and a `tracks.csv` with FMA's three-row
    header and its columns in FMA's spelling, plus two tracks to leave out (no top genre; no audio file)."""
    audio = root / "fma_small"
    header = [("", ""), ("artist", "id"), ("set", "split"), ("set", "subset"), ("track", "genre_top"), ("track", "title")]
    fma_genre = {"classical": "Classical", "jazz": "Jazz", "metal": "Old-Time / Historic", "pop": "Hip-Hop"}
    rows = []
    for number, song in enumerate(_songs(corpus), start=2):
        signal, rate = sf.read(song)
        path = audio_path(audio, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, signal, rate, format="MP3")
        split = ["training"] * 4 + ["validation", "test"]
        rows.append([number, number // 2, split[int(song.stem.split(".")[1]) % 6], "small", fma_genre[song.parent.name], "a, b"])
    rows.append([900, 1, "training", "small", "", "no genre"])
    rows.append([901, 1, "training", "small", "Jazz", "no audio"])
    rows.append([902, 1, "training", "large", "Jazz", "another subset"])
    metadata = root / "fma_metadata" / "tracks.csv"
    metadata.parent.mkdir(parents=True)
    with open(metadata, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([g for g, _ in header])
        writer.writerow([n for _, n in header])
        writer.writerow(["track_id"] + [""] * (len(header) - 1))
        writer.writerows(rows)
    return metadata, audio


@pytest.mark.slow
def test_fma_layout_becomes_a_manifest_that_trains_through_the_cli(tmp_path, small_corpus):
    metadata, audio = fma_collection(tmp_path / "fma", small_corpus)
    manifest = tmp_path / "fma" / "fma_small.csv"
    conversion = write_manifest(metadata, audio, manifest, subset="small")
    assert conversion.written == 24 and conversion.genres == {g: 6 for g in ("classical", "hip-hop", "jazz", "old-time-historic")}
    assert [line for line, _ in conversion.left_out] == [28, 29]  # 3 header lines + 24 tracks, then the two bad ones
    assert "no top genre" in conversion.left_out[0][1] and "no file" in conversion.left_out[1][1]
    assert genre_name("Old-Time / Historic") == "old-time-historic"
    result = run_cli(
        [*ON_DISK, f"data.source.root={manifest}", "data.source.genres=all", "data.split.mode=manifest", "trainer.max_epochs=1"],
        tmp_path / "out",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trained = _trained_split(tmp_path / "out")
    listed = {r.track_id: r.split for r in read_manifest(manifest).rows}
    assert trained == listed and sorted(set(trained.values())) == ["test", "train", "val"]


@pytest.mark.slow
def test_the_fma_command_names_what_it_left_out(tmp_path, small_corpus):
    metadata, audio = fma_collection(tmp_path / "fma", small_corpus)
    shutil.rmtree(audio / "000")
    result = run_cli(
        ["--metadata", str(metadata), "--audio", str(audio), "--subset", "small", "--out", str(tmp_path / "m.csv")],
        tmp_path,
        module="genre_style.data.fma",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no track of FMA's small subset" in result.stderr and "line 4" in result.stderr
