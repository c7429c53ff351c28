"""Any labelled collection as a table: a CSV or Parquet manifest, one row a song, passed as `data.source.root`.

Columns: `path` (absolute, or relative to the manifest's folder), `genre`; optional `split` (train/val/test, also
`training`/`valid`/`validation`: read by `data.split.mode=manifest`) and `artist` (or `group`: what `data.split.mode=artist`
keeps together so no artist is heard in two splits). A bad row (its file missing, its genre or a listed split empty
or unknown, its path a repeat) is reported with its line number and left out; the rest is used.
"""

from __future__ import annotations

import csv
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from genre_style.errors import UserError

log = logging.getLogger(__name__)

MANIFEST_SUFFIXES = (".csv", ".parquet")
REQUIRED_COLUMNS = ("path", "genre")
GROUP_COLUMNS = ("artist", "group")  # the first present names what an artist-grouped split keeps together
SPLIT_VALUES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
SHOWN_PROBLEMS = 10  # bad rows named one by one in the warning; the rest are counted
HOW_TO_WRITE_ONE = (
    "write a CSV or Parquet file with columns path,genre (optional: split, artist), one row per audio file; "
    "`python -m genre_style.data.fma` writes one for FMA"
)


@dataclass(frozen=True)
class ManifestRow:
    """A usable row: its audio file, genre, split (None if not given) and group (None if not given), and where it
    was in the manifest (`line`: the CSV line, or the Parquet row counted from 1)."""

    path: Path
    track_id: str  # the path as listed, without its suffix: how reports and split tables name the song
    genre: str
    split: str | None
    group: str | None
    line: int


@dataclass(frozen=True)
class Manifest:
    """A manifest's usable rows, in file order, with its bad rows as `(line, why)` and what its columns offer."""

    source: Path
    rows: tuple[ManifestRow, ...]
    problems: tuple[tuple[int, str], ...]
    has_split: bool
    has_group: bool

    @property
    def genres(self) -> list[str]:
        return sorted({row.genre for row in self.rows})


def read_manifest(source: str | Path) -> Manifest:
    """The manifest at `source`, checked row by row; bad rows are logged once with their line numbers.
    Raises a UserError for a missing or unreadable file, missing columns, or no usable row."""
    path = Path(source).expanduser().resolve()
    if not path.is_file():
        raise UserError(f"manifest {str(source)!r} does not exist", HOW_TO_WRITE_ONE)
    stat = path.stat()
    return _read(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read(path: Path, size: int, mtime_ns: int) -> Manifest:
    """Parsed once per file version: genre resolution and track discovery both ask, and warn once."""
    del size, mtime_ns  # the cache key: a rewritten manifest is read again
    columns, records = _records(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise UserError(f"manifest {str(path)!r} lacks the column(s) {missing}; its columns are {columns}", HOW_TO_WRITE_ONE)
    group_column = next((c for c in GROUP_COLUMNS if c in columns), None)
    rows: list[ManifestRow] = []
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for line, record in records:
        row, problem = _checked(path.parent, line, record, group_column, seen)
        if problem:
            problems.append((line, problem))
        elif row is not None:
            rows.append(row)
            seen[row.track_id] = line
    manifest = Manifest(path, tuple(rows), tuple(problems), "split" in columns, group_column is not None)
    if problems:
        shown = "; ".join(f"line {line}: {why}" for line, why in problems[:SHOWN_PROBLEMS])
        more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        log.warning("manifest %s: %d bad row(s) left out (%s%s)", path, len(problems), shown, more)
    if not rows:
        raise UserError(
            f"manifest {str(path)!r} has no usable row ({len(problems)} bad"
            + (f", first: line {problems[0][0]}: {problems[0][1]})" if problems else ")"),
            "fix the paths and genres it lists (paths are relative to the manifest's folder unless absolute)",
        )
    return manifest


def _checked(
    base: Path, line: int, record: dict[str, str], group_column: str | None, seen: dict[str, int]
) -> tuple[ManifestRow | None, str | None]:
    """One row as a ManifestRow, or the reason it cannot be used."""
    raw_path, genre = record.get("path", "").strip(), record.get("genre", "").strip()
    if not raw_path:
        return None, "empty path"
    if not genre:
        return None, f"empty genre for {raw_path!r}"
    if "/" in genre or genre in (".", ".."):
        return None, f"genre {genre!r} is not a usable name (no '/')"
    split_value = record.get("split", "").strip().lower()
    split = SPLIT_VALUES.get(split_value) if split_value else None
    if split_value and split is None:
        return None, f"unknown split {split_value!r} (use train, val or test)"
    listed = Path(raw_path).expanduser()
    track_id = listed.with_suffix("").as_posix()
    if track_id in seen:
        return None, f"{raw_path!r} is listed again (first on line {seen[track_id]})"
    audio = listed if listed.is_absolute() else base / listed
    if not audio.is_file():
        return None, f"file {raw_path!r} does not exist"
    group = record.get(group_column, "").strip() if group_column else ""
    return ManifestRow(audio, track_id, genre, split, group or None, line), None


def _records(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The column names and `(line, {column: text})` per row, for CSV (line numbers as an editor shows them) or
    Parquet (rows counted from 1)."""
    try:
        if path.suffix.lower() == ".parquet":
            return _parquet_records(path)
        return _csv_records(path)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise UserError(f"manifest {str(path)!r} cannot be read: {exc}", HOW_TO_WRITE_ONE) from None


def _csv_records(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    reader.fieldnames = columns

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for record in reader:
            yield reader.line_num, {k: (v or "") for k, v in record.items() if isinstance(k, str)}

    return columns, rows()


def _parquet_records(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid for a file that is not Parquet
        raise ValueError(str(exc)) from None
    columns = [c.strip().lower() for c in table.column_names]
    values = {c: table.column(i).to_pylist() for i, c in enumerate(columns)}

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for i in range(table.num_rows):
            yield i + 1, {c: "" if values[c][i] is None else str(values[c][i]) for c in columns}

    return columns, rows()
