"""The data side's registries: a split mode or a kind of source registered from outside the package is what the data
module uses, the corpus is resolved once (its kind, genres, tracks with split and artist carried by the clip table),
and `data.source.genres=all` is read in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pytest
from omegaconf import OmegaConf

from genre_style.data import corpus as corpus_module
from genre_style.data import splits as splits_module
from genre_style.data.corpus import Source, parse_genres, resolve_corpus, source, source_for, source_kind
from genre_style.data.datamodule import GenreDataModule
from genre_style.data.gtzan import AUDIO_EXTENSIONS, Track
from genre_style.data.splits import SPLIT_NAMES, SplitInput, get_split_mode, split_mode
from genre_style.errors import UserError
from genre_style.tracking.run_record import data_name
from tests.conftest import FAST_RUN, run_cli

GENRES = ("classical", "jazz", "metal", "pop")


@pytest.fixture
def registered() -> Iterator[None]:
    """Leave the registries as they were: what a test registers is gone after it."""
    splits, sources = dict(splits_module.SPLITS), dict(corpus_module.SOURCES)
    yield
    splits_module.SPLITS.clear()
    splits_module.SPLITS.update(splits)
    corpus_module.SOURCES.clear()
    corpus_module.SOURCES.update(sources)


def _module(root: Path | str, **split) -> GenreDataModule:
    """Every genre of `root`, read on one worker; `split` the data.split settings."""
    return GenreDataModule(
        source={"root": str(root), "genres": "all"}, split=split, store={"cache_dir": None, "workers": 1}, progress=False
    )


def test_a_split_mode_registered_outside_the_package_is_what_the_data_module_uses(registered, small_corpus):
    """By file name: tracks 0-3 of each genre train, 4 val, 5 test (the small corpus has 6 a genre)."""

    @split_mode("by_number", reads=())
    def by_number(data: SplitInput) -> dict[str, np.ndarray]:
        """tracks by their number: 0-3 train, 4 val, 5 test."""
        number = np.array([int(t.rsplit(".", 1)[1]) for t in data.table.track_ids])[data.track_index]
        which = np.where(number < 4, 0, np.where(number == 4, 1, 2))
        return {name: np.flatnonzero(which == i) for i, name in enumerate(SPLIT_NAMES)}

    dm = _module(small_corpus, mode="by_number", balance=False)
    dm.setup()
    split_of = {row["track_id"]: row["split"] for row in dm.split_tracks()}
    assert len(split_of) == 24
    assert all(split_of[t] == ("train" if int(t[-1]) < 4 else "val" if t.endswith("4") else "test") for t in split_of)
    assert "by_number" in get_split_mode("by_number").name
    with pytest.raises(UserError, match=r"(?s)unknown data.split.mode='nope'.*by_number \(tracks by their number"):
        _module(small_corpus, mode="nope")


def test_the_config_check_asks_the_split_registry(registered):
    from genre_style.config_checks import validate_config

    # synthetic: no data root to look for
    cfg = OmegaConf.create({"data": {"source": {"root": "unused", "synthetic": {}}, "split": {"mode": "nope"}}})
    with pytest.raises(UserError, match="unknown data.split.mode='nope'"):
        validate_config(cfg, overrides=[])
    split_mode("nope")(lambda data: {})  # registered: no longer the check's complaint
    validate_config(cfg, overrides=[])


def test_a_source_registered_outside_the_package_feeds_its_splits_through_the_clip_table(registered, small_corpus, tmp_path):
    """A `.songs` listing (`genre path split` a line): claimed by its suffix, read once; its splits reach the clip table
    and `data.split.mode=manifest` uses them, with no manifest file anywhere."""

    @source("songs_listing")
    class SongsListing(Source):
        reads = 0

        @classmethod
        def claims(cls, root: Path) -> bool:
            return root.suffix == ".songs"

        def _lines(self) -> list[list[str]]:
            SongsListing.reads += 1
            return [line.split() for line in self.root.read_text().splitlines() if line.strip()]

        def genres(self) -> list[str]:
            return sorted({genre for genre, _, _ in self._lines()})

        def tracks(self, genres: Sequence[str]) -> list[Track]:
            rows = self._lines()
            return [Track(Path(p), g, Path(p).stem, split) for want in genres for g, p, split in rows if g == want]

        def offers(self, field: str) -> bool:
            return field == "split"

    files = sorted(p for g in GENRES for p in (small_corpus / g).iterdir() if p.suffix in AUDIO_EXTENSIONS)
    split_of = {p.stem: ("test" if p.stem.endswith("0") else "val" if p.stem.endswith("1") else "train") for p in files}
    listing = tmp_path / "all.songs"
    listing.write_text("".join(f"{p.parent.name} {p} {split_of[p.stem]}\n" for p in files))

    assert source_kind(listing) == "songs_listing" and source_kind(small_corpus) == "folder"
    dm = _module(listing, mode="manifest")
    dm.setup()
    assert dm.corpus().kind == "songs_listing" and dm.corpus().genres == list(GENRES)
    assert SongsListing.reads == 2  # once for its genres, once for their tracks: never again for the split
    assert {row["track_id"]: row["split"] for row in dm.split_tracks()} == split_of
    assert dm.table is not None and dm.table.track_splits == [split_of[t] for t in dm.table.track_ids]

    with pytest.raises(UserError, match="needs a artist \\(or group\\) column|reads a manifest's artist column"):
        _module(listing, mode="artist").setup()


def test_a_source_can_be_named_instead_of_claimed(registered, small_corpus):
    assert resolve_corpus(small_corpus, ["jazz", "pop"], "folder").kind == "folder"
    with pytest.raises(UserError, match=r"unknown data.source.kind='tape'.*"):
        source_for(small_corpus, "tape")
    with pytest.raises(ValueError, match="already registered"):
        source("folder")(type("Other", (Source,), {}))


def test_the_corpus_is_resolved_once_with_each_tracks_split_and_artist(tmp_path, small_corpus):
    files = sorted(p for g in GENRES for p in (small_corpus / g).iterdir() if p.suffix in AUDIO_EXTENSIONS)
    manifest = tmp_path / "labels.csv"
    manifest.write_text(
        "path,genre,split,artist\n"
        + "".join(f"{p},{p.parent.name},{'train' if i % 3 else 'test'},{p.parent.name}-a{i % 3}\n" for i, p in enumerate(files))
    )
    corpus = resolve_corpus(manifest, "all")
    assert corpus.kind == "manifest" and corpus.genres == sorted(GENRES)
    assert [t.split for t in corpus.tracks][:3] == ["test", "train", "train"]
    dm = _module(manifest, mode="artist", sizes=[0.34, 0.33, 0.33])
    dm.setup()
    assert dm.table is not None
    artist = {str(p.with_suffix("")): f"{p.parent.name}-a{i % 3}" for i, p in enumerate(files)}
    assert dm.table.track_groups == [artist[t] for t in dm.table.track_ids]
    assert data_name(str(manifest)) == "labels" and data_name(str(small_corpus)) == small_corpus.name
    assert data_name("/data/gtzan/genres") == "gtzan"


@pytest.mark.parametrize(
    "given, parsed",
    [("all", None), (["all"], None), (None, None), ("jazz", ["jazz"]), (["jazz", "pop"], ["jazz", "pop"])],
)
def test_all_genres_are_parsed_in_one_place(given, parsed):
    assert parse_genres(given) == parsed


@pytest.mark.slow
def test_a_split_and_an_evaluation_from_outside_the_package_run_through_the_cli(tmp_path):
    """`+plugins=[tests.registry_plugin]`: its split mode decides the split, its evaluation's figure is logged with
    its setting; an unknown plugin or setting is one line."""
    import csv
    import json

    args = [*FAST_RUN, "trainer.max_epochs=1", "+plugins=[tests.registry_plugin]", "data.split.mode=by_number"]
    result = run_cli([*args, "+evaluation.spread_scale=2.0"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (artifacts,) = tmp_path.glob("runs/*/artifacts")
    with open(artifacts / "data/split_tracks.csv") as handle:
        split_of = {row["track_id"]: row["split"] for row in csv.DictReader(handle)}
    assert len(split_of) == 24
    assert all(s == ("train" if int(t[-1]) < 4 else "val" if t.endswith("4") else "test") for t, s in split_of.items())
    assert json.loads((artifacts / "report/final_metrics.json").read_text())["test/spread"] > 0

    refused = run_cli([*FAST_RUN, "+plugins=[tests.no_such_plugin]"], tmp_path / "refused")
    assert refused.returncode == 2 and "plugins: cannot import 'tests.no_such_plugin'" in refused.stderr
