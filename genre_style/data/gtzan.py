"""The GTZAN folder layout `<root>/<genre>/<genre>.NNNNN.<ext>`: its genre folders and tracks (data/corpus.py asks it,
beside the manifest reader, for the corpus a `data.source.root` names), and the `Track` every source gives.

Also accepts the Kaggle copy (`<root>/Data/genres_original/...`) and the tarball's `<root>/genres/...`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from genre_style.errors import UserError

AUDIO_EXTENSIONS = (".wav", ".au", ".flac", ".mp3", ".ogg")
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
# Layouts under a user-given root where the genre folders may live, most specific first.
NESTED_LAYOUTS = (Path("Data") / "genres_original", Path("genres_original"), Path("genres"))

HOW_TO_GET_GTZAN = (
    "put GTZAN at that path as <root>/<genre>/<genre>.00000.wav (the tarball's `genres/` folder or Kaggle's "
    "`Data/genres_original/` both work), pass data.source.root=/path/to/gtzan or set GTZAN_ROOT, "
    "or try the built-in corpus with data=synthetic"
)


@dataclass(frozen=True)
class Track:
    """One audio file of the corpus; `track_id` (e.g. `jazz.00054`) names it in splits and reports. A manifest may
    also give its `split` (`data.split.mode=manifest`) and its `group`, e.g. the artist (`data.split.mode=artist`)."""

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


def genre_folders(root: str | Path) -> list[str]:
    """Names of the genre folders found under `root`, sorted; a UserError naming `root` if there are none."""
    return _genre_folders(find_genre_root(root))


UNLABELLED = "unlabelled"  # the genre name of a `data.source.unlabelled` song: it has none


def discover_unlabelled(folders: str | Sequence[str]) -> list[Track]:
    """Every audio file under `folders` (any depth, any layout), in a stable order, as songs without a genre:
    `data.source.unlabelled` feeds them to the label-free loss terms only. The track id is the folder's name and the
    file's path under it, so two folders' `song.wav` stay two songs."""
    tracks = []
    for folder in [folders] if isinstance(folders, str) else list(folders):
        base = Path(folder).expanduser()
        if not base.is_dir():
            raise UserError(
                f"data.source.unlabelled folder {str(base)!r} does not exist or is not a folder",
                "pass folders of audio files, e.g. data.source.unlabelled=[/music/untagged], or data.source.unlabelled=null",
            )
        files = sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            raise UserError(
                f"data.source.unlabelled folder {str(base)!r} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})",
                "point it at a folder with audio files in it (any depth), or data.source.unlabelled=null",
            )
        tracks += [Track(path=p, genre=UNLABELLED, track_id=f"{base.name}/{p.relative_to(base).with_suffix('')}") for p in files]
    return tracks


def folder_tracks(root: str | Path, genres: Sequence[str]) -> list[Track]:
    """All audio files of the given genre folders, in a stable order (genre order, then file name)."""
    genre_root = find_genre_root(root)
    tracks = []
    for genre in genres:
        files = sorted(p for p in (genre_root / genre).iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        tracks += [Track(path=p, genre=genre, track_id=p.stem) for p in files]
    return tracks
