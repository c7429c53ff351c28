"""Find the tracks of a corpus: a GTZAN-layout folder `<root>/<genre>/<genre>.NNNNN.<ext>`, or any labelled
collection listed in a manifest file (`data/manifest.py`) given as the root.

Also accepts the Kaggle copy (`<root>/Data/genres_original/...`) and the tarball's `<root>/genres/...`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from genre_style.data.manifest import is_manifest, read_manifest
from genre_style.errors import UserError

AUDIO_EXTENSIONS = (".wav", ".au", ".flac", ".mp3", ".ogg")
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
# Layouts under a user-given root where the genre folders may live, most specific first.
NESTED_LAYOUTS = (Path("Data") / "genres_original", Path("genres_original"), Path("genres"))

HOW_TO_GET_GTZAN = (
    "put GTZAN at that path as <root>/<genre>/<genre>.00000.wav (the tarball's `genres/` folder or Kaggle's "
    "`Data/genres_original/` both work), pass data.root=/path/to/gtzan or set GTZAN_ROOT, "
    "or try the built-in corpus with data=synthetic"
)


@dataclass(frozen=True)
class Track:
    """One audio file of the corpus; `track_id` (e.g. `jazz.00054`) names it in splits and reports. A manifest may
    also give its `split` (`data.split=manifest`) and its `group`, e.g. the artist (`data.split=artist`)."""

    path: Path
    genre: str
    track_id: str
    split: str | None = None
    group: str | None = None


def find_genre_root(root: str | Path) -> Path:
    """Return the folder that holds the genre folders, or raise a UserError naming `root`."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"data root {str(root)!r} does not exist or is not a folder", HOW_TO_GET_GTZAN)
    for nested in NESTED_LAYOUTS:
        if (root / nested).is_dir() and _genre_folders(root / nested):
            return root / nested
    if _genre_folders(root):
        return root
    raise UserError(f"data root {str(root)!r} holds no genre folders with audio files", HOW_TO_GET_GTZAN)


def _genre_folders(folder: Path) -> list[str]:
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.is_dir() and any(f.suffix.lower() in AUDIO_EXTENSIONS for f in p.iterdir() if f.is_file())
    )


def available_genres(root: str | Path) -> list[str]:
    """Names of the genre folders found under `root` (or the genres a manifest lists), sorted."""
    if is_manifest(root):
        return read_manifest(root).genres
    return _genre_folders(find_genre_root(root))


def resolve_genres(root: str | Path, genres: str | Sequence[str]) -> list[str]:
    """Check the requested genres exist; `"all"` selects every genre folder found."""
    found = available_genres(root)
    if isinstance(genres, str):
        genres = found if genres == "all" else [genres]
    genres = list(genres)
    if genres == ["all"]:
        return found
    missing = [g for g in genres if g not in found]
    if missing:
        raise UserError(
            f"unknown genre(s) {missing} under {str(root)!r}; genres found: {found}",
            "choose data.genres from the genres found, or data.genres=all",
        )
    if len(set(genres)) != len(genres):
        raise UserError(f"data.genres lists a genre twice: {genres}", "list each genre once")
    if len(genres) < 2:
        raise UserError(f"data.genres has {len(genres)} genre(s); a classifier needs at least 2", "add genres")
    return genres


UNLABELLED = "unlabelled"  # the genre name of a `data.unlabelled` song: it has none


def discover_unlabelled(folders: str | Sequence[str]) -> list[Track]:
    """Every audio file under `folders` (any depth, any layout), in a stable order, as songs without a genre:
    `data.unlabelled` feeds them to the label-free loss terms only. The track id is the folder's name and the
    file's path under it, so two folders' `song.wav` stay two songs."""
    tracks = []
    for folder in [folders] if isinstance(folders, str) else list(folders):
        base = Path(folder).expanduser()
        if not base.is_dir():
            raise UserError(
                f"data.unlabelled folder {str(base)!r} does not exist or is not a folder",
                "pass folders of audio files, e.g. data.unlabelled=[/music/untagged], or data.unlabelled=null",
            )
        files = sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            raise UserError(
                f"data.unlabelled folder {str(base)!r} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})",
                "point it at a folder with audio files in it (any depth), or data.unlabelled=null",
            )
        tracks += [Track(path=p, genre=UNLABELLED, track_id=f"{base.name}/{p.relative_to(base).with_suffix('')}") for p in files]
    return tracks


def discover_tracks(root: str | Path, genres: Sequence[str]) -> list[Track]:
    """All audio files of the given genres, in a stable order (genre order, then file name; a manifest's own order
    within a genre)."""
    if is_manifest(root):
        rows = read_manifest(root).rows
        return [Track(r.path, r.genre, r.track_id, r.split, r.group) for g in genres for r in rows if r.genre == g]
    genre_root = find_genre_root(root)
    tracks = []
    for genre in genres:
        files = sorted(p for p in (genre_root / genre).iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        tracks += [Track(path=p, genre=genre, track_id=p.stem) for p in files]
    return tracks
