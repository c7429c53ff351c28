"""The corpus, resolved once: which kind of source `data.source.root` is, its genres, and its tracks with the split and the
artist (group) a source may give.

Every reader of a corpus (training, downstream scoring, style transfer, the config checks, the run's name) asks here,
so the kind of source is decided in one place (`source_for`) and `data.source.genres=all` is read in one place
(`parse_genres`). A new kind of source is one class registered with `@source("name")` (its `claims` says which
`data.source.root` values are its own) and, where it needs settings, a `conf/data/<name>.yaml`; `data.source.kind=<name>` picks it
by name instead of by its root.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence, TypeVar

from genre_style.data.gtzan import Track, folder_tracks, genre_folders
from genre_style.data.manifest import MANIFEST_SUFFIXES, read_manifest
from genre_style.errors import UserError

log = logging.getLogger(__name__)

ALL = "all"  # data.source.genres=all: every genre the source has
TRACK_FIELDS = ("split", "group")  # what a source may give per track beyond its genre (Track.split, Track.group)


def parse_genres(genres: str | Sequence[str] | None) -> list[str] | None:
    """`data.source.genres` as a list of names, or None for every genre the source has (`all`, `[all]`, null)."""
    if genres is None:
        return None
    names = [genres] if isinstance(genres, str) else [str(g) for g in genres]
    return None if names == [ALL] else names


class Source:
    """A kind of corpus: where its genres and tracks come from. Built from `data.source.root`; reads nothing until asked."""

    name: ClassVar[str] = ""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    @classmethod
    def claims(cls, root: Path) -> bool:
        """Whether `root` is this kind's (asked in registration order; the folder layout takes what no other claims)."""
        return False

    def genres(self) -> list[str]:
        """Every genre the corpus has, sorted."""
        raise NotImplementedError

    def tracks(self, genres: Sequence[str]) -> list[Track]:
        """The tracks of `genres`, in a stable order (genre order, then the source's own)."""
        raise NotImplementedError

    def offers(self, field: str) -> bool:
        """Whether the tracks carry `field` (one of TRACK_FIELDS): a split mode that reads it asks."""
        return False

    def label(self) -> str:
        """The corpus's short name in run names, tags and reports."""
        return self.root.stem


SOURCES: dict[str, type[Source]] = {}
FALLBACK = "folder"  # the kind `data.source.root` is when no other source claims it
S = TypeVar("S", bound=type[Source])


def source(name: str) -> Callable[[S], S]:
    """Register a kind of source under `name` (`data.source.kind=<name>`, or chosen by `claims`)."""

    def register(cls: S) -> S:
        if name in SOURCES and SOURCES[name] is not cls:
            raise ValueError(f"a data source named {name!r} is already registered ({SOURCES[name].__qualname__})")
        cls.name = name
        SOURCES[name] = cls
        return cls

    return register


@source("manifest")
class ManifestSource(Source):
    """A CSV or Parquet file of `path,genre[,split][,artist]` rows (data/manifest.py)."""

    @classmethod
    def claims(cls, root: Path) -> bool:
        return root.suffix.lower() in MANIFEST_SUFFIXES

    def genres(self) -> list[str]:
        return read_manifest(self.root).genres

    def tracks(self, genres: Sequence[str]) -> list[Track]:
        rows = read_manifest(self.root).rows
        return [Track(r.path, r.genre, r.track_id, r.split, r.group) for g in genres for r in rows if r.genre == g]

    def offers(self, field: str) -> bool:
        manifest = read_manifest(self.root)
        return manifest.has_split if field == "split" else manifest.has_group


@source(FALLBACK)
class FolderSource(Source):
    """A GTZAN-layout folder, `<root>/<genre>/<genre>.NNNNN.<ext>` (data/gtzan.py; Kaggle's and the tarball's too)."""

    @classmethod
    def claims(cls, root: Path) -> bool:
        return True

    def genres(self) -> list[str]:
        return genre_folders(self.root)

    def tracks(self, genres: Sequence[str]) -> list[Track]:
        return folder_tracks(self.root, genres)

    def label(self) -> str:
        """GTZAN's own `genres/` folder is named by the folder holding it."""
        path = self.root
        return path.parent.name if path.name == "genres" and path.parent.name else path.name


def source_for(root: str | Path, kind: str | None = None) -> Source:
    """The one place that decides what kind of source `root` is: `kind` by name, else the first registered kind
    that claims it, else a genre-folder layout."""
    path = Path(root).expanduser()
    if kind is not None:
        if kind not in SOURCES:
            raise UserError(
                f"unknown data.source.kind={kind!r}",
                f"use one of {list(SOURCES)}, or data.source.kind=null (by data.source.root)",
            )
        return SOURCES[kind](path)
    for name, cls in SOURCES.items():
        if name != FALLBACK and cls.claims(path):
            return cls(path)
    return SOURCES[FALLBACK](path)


def source_kind(root: str | Path, kind: str | None = None, synthetic: Any = None) -> str:
    """The kind a data config describes: `synthetic` for the built-in corpus (written as a folder, then read as one),
    else its source's name."""
    return "synthetic" if synthetic is not None else source_for(root, kind).name


def check_genres(found: Sequence[str], genres: str | Sequence[str] | None, where: str) -> list[str]:
    """The requested genres among those `found` (all of them for `all`); unknown, repeated or fewer than two: a
    UserError naming them."""
    names = parse_genres(genres)
    if names is None:
        return list(found)
    missing = [g for g in names if g not in found]
    if missing:
        raise UserError(
            f"unknown genre(s) {missing} under {where!r}; genres found: {list(found)}",
            "choose data.source.genres from the genres found, or data.source.genres=all",
        )
    if len(set(names)) != len(names):
        raise UserError(f"data.source.genres lists a genre twice: {names}", "list each genre once")
    if len(names) < 2:
        raise UserError(f"data.source.genres has {len(names)} genre(s); a classifier needs at least 2", "add genres")
    return names


@dataclass(frozen=True)
class Corpus:
    """A data root resolved once: its source, the chosen genres and their tracks (each with its split and group,
    where the source gives them)."""

    source: Source
    genres: list[str]
    tracks: list[Track]

    @property
    def kind(self) -> str:
        return self.source.name

    def require(self, field: str, asked_by: str) -> None:
        """A UserError unless the tracks carry `field` (`split` or `group`): `asked_by` (e.g. `data.split.mode=artist`)
        needs it."""
        wanted = "split" if field == "split" else "artist (or group)"
        if self.kind != ManifestSource.name and not self.source.offers(field):
            raise UserError(
                f"{asked_by} reads a manifest's {'split' if field == 'split' else 'artist'} column, and data.source.root "
                f"{str(self.source.root)!r} is a {'folder' if self.kind == FALLBACK else self.kind + ' source'}",
                "pass data.source.root=<manifest.csv|.parquet> (columns path,genre,split,artist), or use data.split.mode=track",
            )
        if not self.source.offers(field):
            raise UserError(
                f"{asked_by} needs a {wanted} column, and the manifest {str(self.source.root)!r} has none",
                f"add a {wanted} column to it, or use data.split.mode=track",
            )


def resolve_corpus(root: str | Path, genres: str | Sequence[str] | None, kind: str | None = None) -> Corpus:
    """`data.source.root` (and `data.source.kind`) as a Corpus with the requested genres' tracks."""
    src = source_for(root, kind)
    names = check_genres(src.genres(), genres, str(root))
    return Corpus(src, names, src.tracks(names))


def available_genres(root: str | Path, kind: str | None = None) -> list[str]:
    """Every genre under `root` (genre folders, or the genres a manifest lists), sorted."""
    return source_for(root, kind).genres()


def resolve_genres(root: str | Path, genres: str | Sequence[str] | None, kind: str | None = None) -> list[str]:
    """The requested genres, checked against those under `root`; `all` selects every one."""
    return check_genres(available_genres(root, kind), genres, str(root))


def discover_tracks(root: str | Path, genres: Sequence[str], kind: str | None = None) -> list[Track]:
    """The tracks of `genres` under `root`, in a stable order (genre order, then file name or manifest order)."""
    return source_for(root, kind).tracks(genres)
