"""FMA (the Free Music Archive data set) as a manifest: its `tracks.csv` -> path, genre, split, artist.

    python -m genre_style.data.fma --metadata fma_metadata/tracks.csv --audio fma_medium --subset medium \
        --out fma_medium.csv
    python -m genre_style.train data.source.root=fma_medium.csv data.source.genres=all data.split.mode=manifest

What it takes from `tracks.csv` (pandas' three-row header: column group, column name, then `track_id`): the top
genre (`track.genre_top`, as a folder-safe name: `Hip-Hop` -> `hip-hop`, `Old-Time / Historic` -> `old-time-historic`),
FMA's own split (`set.split`: training/validation/test), its subset (`set.subset`: small is within medium, medium
within large) and the artist (`artist.id`, for `data.split.mode=artist`). The audio is FMA's nested layout,
`<audio>/<first 3 digits>/<6-digit id>.mp3`. Tracks of the subset without a top genre or without their audio file are
left out, counted, and the first few named with their line in `tracks.csv`.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from genre_style.errors import UserError, command

log = logging.getLogger(__name__)

SUBSETS = ("small", "medium", "large")  # each within the next
COLUMNS = {"genre": ("track", "genre_top"), "split": ("set", "split"), "subset": ("set", "subset"), "artist": ("artist", "id")}
SPLITS = {"training": "train", "validation": "val", "test": "test"}
SHOWN = 5


def genre_name(top_genre: str) -> str:
    """FMA's top genre as a folder- and config-safe name: lower case, runs of other characters as one `-`."""
    return re.sub(r"[^a-z0-9]+", "-", top_genre.strip().lower()).strip("-")


def audio_path(audio_root: Path, track_id: int, extension: str = "mp3") -> Path:
    """FMA's layout: track 2 is `000/000002.mp3`."""
    name = f"{track_id:06d}"
    return audio_root / name[:3] / f"{name}.{extension}"


@dataclass(frozen=True)
class Conversion:
    """What a conversion wrote and left out (`(tracks.csv line, why)` per track left out)."""

    written: int
    left_out: tuple[tuple[int, str], ...]
    genres: dict[str, int]


def write_manifest(metadata: Path, audio_root: Path, out: Path, subset: str = "medium", extension: str = "mp3") -> Conversion:
    """Write the manifest of `subset`'s tracks (paths relative to the manifest's folder where they can be)."""
    if subset not in SUBSETS:
        raise UserError(f"unknown FMA subset {subset!r}", f"use one of {', '.join(SUBSETS)}")
    if not metadata.is_file():
        raise UserError(f"FMA metadata {str(metadata)!r} does not exist", "pass --metadata fma_metadata/tracks.csv")
    if not audio_root.is_dir():
        raise UserError(f"FMA audio folder {str(audio_root)!r} does not exist", "pass --audio fma_<subset> (its 000/ ...)")
    wanted = set(SUBSETS[: SUBSETS.index(subset) + 1])
    rows: list[dict[str, str]] = []
    left_out: list[tuple[int, str]] = []
    with open(metadata, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        try:
            groups, names, first = next(reader), next(reader), next(reader)
        except StopIteration:
            raise UserError(f"{str(metadata)!r} is shorter than FMA's three header rows", "pass FMA's tracks.csv") from None
        index = _column_index(groups, names, metadata)
        if not first or first[0] != "track_id":
            raise UserError(f"{str(metadata)!r}: the third header row should start with track_id", "pass FMA's tracks.csv")
        for record in reader:
            line = reader.line_num
            try:
                track_id = int(record[0])
                values = {key: record[i].strip() for key, i in index.items()}
            except (ValueError, IndexError):
                left_out.append((line, f"malformed row {record[:1]}"))
                continue
            if values["subset"] not in wanted:
                continue
            if not values["genre"]:
                left_out.append((line, f"track {track_id} has no top genre"))
                continue
            audio = audio_path(audio_root, track_id, extension)
            if not audio.is_file():
                left_out.append((line, f"track {track_id}: no file {audio}"))
                continue
            rows.append(
                {
                    "path": _relative(audio, out.parent),
                    "genre": genre_name(values["genre"]),
                    "split": SPLITS.get(values["split"], ""),
                    "artist": values["artist"],
                }
            )
    if not rows:
        raise UserError(
            f"no track of FMA's {subset} subset has both a top genre and its audio under {str(audio_root)!r}"
            + (f" (first left out: line {left_out[0][0]}: {left_out[0][1]})" if left_out else ""),
            "check --audio is the folder holding 000/, 001/, ... and --subset matches it",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "genre", "split", "artist"])
        writer.writeheader()
        writer.writerows(rows)
    genres: dict[str, int] = {}
    for row in rows:
        genres[row["genre"]] = genres.get(row["genre"], 0) + 1
    return Conversion(len(rows), tuple(left_out), dict(sorted(genres.items())))


def _column_index(groups: Sequence[str], names: Sequence[str], metadata: Path) -> dict[str, int]:
    found = {(g.strip(), n.strip()): i for i, (g, n) in enumerate(zip(groups, names))}
    missing = [f"{g}.{n}" for g, n in COLUMNS.values() if (g, n) not in found]
    if missing:
        raise UserError(f"{str(metadata)!r} lacks FMA's column(s) {missing}", "pass fma_metadata/tracks.csv from FMA")
    return {key: found[column] for key, column in COLUMNS.items()}


def _relative(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), base.resolve())
    except ValueError:  # another drive (Windows): keep it absolute
        return str(path.resolve())


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metadata", type=Path, required=True, help="FMA's fma_metadata/tracks.csv")
    parser.add_argument("--audio", type=Path, required=True, help="the audio folder (fma_small, fma_medium, ...)")
    parser.add_argument("--subset", default="medium", choices=SUBSETS, help="medium (default) includes small")
    parser.add_argument("--out", type=Path, required=True, help="the manifest to write (.csv)")
    parser.add_argument("--extension", default="mp3", help="the audio files' extension (mp3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = write_manifest(args.metadata, args.audio, args.out, args.subset, args.extension)
    if result.left_out:
        shown = "; ".join(f"line {line}: {why}" for line, why in result.left_out[:SHOWN])
        log.warning("%d track(s) left out (%s%s)", len(result.left_out), shown, " ..." if len(result.left_out) > SHOWN else "")
    log.info("wrote %s: %d tracks of %d genres %s", args.out, result.written, len(result.genres), result.genres)
    log.info(
        "train on it: python -m genre_style.train data.source.root=%s data.source.genres=all data.split.mode=manifest", args.out
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
