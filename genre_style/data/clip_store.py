"""Clip features on disk in numpy shards, written part by part as preprocessing goes, read a batch at a time.

For collections whose features do not fit in memory (`data.store.mode=disk`, or `auto` past `data.store.memory_budget_mb`).
Chosen by `benchmarks/bench_store.py` (docs/data.md): numpy's own `.npy` files, a batch's rows read with
`os.preadv` into one buffer, served 174k clips/s of 64 x 79 maps for +25 MB of RSS, against 168k and +411 MB for the
same shards memory-mapped (touched pages count as RSS: it grows with the corpus) and 36k and +131 MB for litdata's
StreamingDataLoader (393 clips/s by index); and a batch of any clips, so the sampler, the shuffle and hence the
training order are the in-memory path's own.

Layout of `<cache_dir>/store-<key>/` (`key`: preprocess.cache_key, as for the in-memory cache):
    part-00000.npy   the part's clips `[n, *feature_shape]` float32
    part-00000.json  its tracks (ids, genres, clip counts) and skipped files: written last, so it marks the part done
    index.json       written when every part is: the store is complete
Every file is written to a temporary name and renamed, so a killed preprocessing leaves whole parts only; the next
run keeps them and goes on with the first missing part. Each part is decoded with one BLAS thread per worker (as
the in-memory cache is), so a resumed store holds the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from genre_style.data.audio import ClipSpec
from genre_style.data.gtzan import Track
from genre_style.errors import UserError

log = logging.getLogger(__name__)

STORE_FORMAT = 1
PART_TRACKS = 256  # tracks a part: ~170 MB of log-mel maps at 33 clips a track, the most preprocessing holds at once


def _atomic_write(path: Path, content: np.ndarray | dict) -> None:
    """An array as `.npy`, or a dict as JSON, under a temporary name and then renamed: whole or absent."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(content, np.ndarray):
                np.save(handle, content)
            else:
                handle.write(json.dumps(content).encode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class ClipStore:
    """A complete store: per-clip labels and track indices in memory (16 bytes a clip), features on disk."""

    folder: Path
    genres: list[str]
    track_ids: list[str]
    track_labels: np.ndarray  # int64 [n_tracks]
    labels: np.ndarray  # int64 [n_clips]
    track_index: np.ndarray  # int64 [n_clips]
    feature_shape: tuple[int, ...]
    skipped: list[dict] = field(default_factory=list)
    _parts: list[tuple[int, int, int]] = field(default_factory=list)  # (first clip, clip count, data offset) per part
    _fds: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return int(len(self.labels))

    @property
    def clip_bytes(self) -> int:
        return int(np.prod(self.feature_shape)) * 4

    def read(self, indices: np.ndarray | Sequence[int]) -> np.ndarray:
        """`[len(indices), *feature_shape]` float32, in the order asked: each row one `preadv` into the batch."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), *self.feature_shape), dtype=np.float32)
        if not len(indices):
            return out
        if not self._fds:
            self._fds = [os.open(self.folder / f"part-{i:05d}.npy", os.O_RDONLY) for i in range(len(self._parts))]
        starts = np.array([p[0] for p in self._parts])
        part_of = np.searchsorted(starts, indices, side="right") - 1
        view, row = out.data.cast("B"), self.clip_bytes
        for j, (clip, part) in enumerate(zip(indices.tolist(), part_of.tolist())):
            first, _, offset = self._parts[part]
            os.preadv(self._fds[part], [view[j * row : (j + 1) * row]], offset + (clip - first) * row)
        return out

    def __getstate__(self) -> dict[str, Any]:  # to loader workers or DDP spawn: file descriptors are reopened there
        return {**self.__dict__, "_fds": []}

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


def store_folder(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / f"store-{key}"


def build_or_resume(
    tracks: Sequence[Track],
    genres: Sequence[str],
    spec: ClipSpec,
    folder: Path,
    workers: int | None = None,
    progress: bool = True,
    part_tracks: int = PART_TRACKS,
) -> tuple[ClipStore, bool]:
    """The store of `tracks` in `folder`: opened if complete, else built from its first missing part on.
    Returns (store, whether it was complete already)."""
    from genre_style.data.preprocess import build_clip_table

    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "index.json"
    if index.exists():
        try:
            return open_store(folder), True
        except (OSError, ValueError, KeyError) as exc:  # damaged from outside (renames never leave half a file)
            log.warning("store %s is unreadable (%s); rebuilding it", folder, exc)
            shutil.rmtree(folder)
            folder.mkdir(parents=True)
    parts = [list(tracks[i : i + part_tracks]) for i in range(0, len(tracks), part_tracks)]
    done = [_part_is_done(folder, i, part) for i, part in enumerate(parts)]
    if any(done):
        log.info("store %s: %d of %d parts already written, going on from there", folder, sum(done), len(parts))
    for i, part in enumerate(parts):
        if done[i]:
            continue
        if progress:
            log.info("store %s: part %d of %d (%d tracks)", folder.name, i + 1, len(parts), len(part))
        table = build_clip_table(part, genres, spec, workers, progress=False, allow_empty=True)
        _atomic_write(folder / f"part-{i:05d}.npy", table.features.reshape(len(table), *spec.feature_shape))
        meta = {
            "format": STORE_FORMAT,
            "tracks": [t.track_id for t in part],
            "track_ids": table.track_ids,
            "track_labels": table.track_labels.tolist(),
            "clips_per_track": np.bincount(table.track_index, minlength=len(table.track_ids)).tolist(),
            "skipped": table.skipped,
        }
        _atomic_write(folder / f"part-{i:05d}.json", meta)
    summary = {"format": STORE_FORMAT, "parts": len(parts), "genres": list(genres), "feature_shape": list(spec.feature_shape)}
    _atomic_write(index, summary)
    store = open_store(folder)
    if not len(store):
        raise UserError(
            f"none of the {len(tracks)} audio files could be used (first problem: {store.skipped[0]['reason'] if store.skipped else 'no files'})",
            "check the files decode (e.g. with `python -c 'import soundfile; soundfile.read(PATH)'`)",
        )
    return store, False


def _part_is_done(folder: Path, i: int, part: Sequence[Track]) -> bool:
    meta_path, data_path = folder / f"part-{i:05d}.json", folder / f"part-{i:05d}.npy"
    if not (meta_path.exists() and data_path.exists()):
        return False
    try:
        return json.loads(meta_path.read_text()).get("tracks") == [t.track_id for t in part]
    except (OSError, ValueError):
        return False


def open_store(folder: Path) -> ClipStore:
    """A complete store's index: labels, track indices and where each part's clips start in its file."""
    summary = json.loads((folder / "index.json").read_text())
    if summary.get("format") != STORE_FORMAT:
        raise ValueError(f"store format {summary.get('format')} is not {STORE_FORMAT}")
    genres, shape = list(summary["genres"]), tuple(summary["feature_shape"])
    track_ids: list[str] = []
    track_labels: list[int] = []
    labels: list[np.ndarray] = []
    track_index: list[np.ndarray] = []
    skipped: list[dict] = []
    parts: list[tuple[int, int, int]] = []
    first = 0
    for i in range(summary["parts"]):
        meta = json.loads((folder / f"part-{i:05d}.json").read_text())
        data = np.load(folder / f"part-{i:05d}.npy", mmap_mode="r")  # the header only: where the rows start
        counts = np.asarray(meta["clips_per_track"], dtype=np.int64)
        if int(counts.sum()) != len(data) or tuple(data.shape[1:]) != shape:
            raise ValueError(f"part {i}: {len(data)} clips of {data.shape[1:]} on disk, {int(counts.sum())} of {shape} listed")
        parts.append((first, len(data), int(data.offset)))
        ids = np.repeat(np.arange(len(counts)) + len(track_ids), counts)
        track_index.append(ids)
        labels.append(np.repeat(np.asarray(meta["track_labels"], dtype=np.int64), counts))
        track_ids += meta["track_ids"]
        track_labels += meta["track_labels"]
        skipped += meta["skipped"]
        first += len(data)
        del data
    return ClipStore(
        folder=folder,
        genres=genres,
        track_ids=track_ids,
        track_labels=np.asarray(track_labels, dtype=np.int64),
        labels=np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64),
        track_index=np.concatenate(track_index) if track_index else np.zeros(0, dtype=np.int64),
        feature_shape=shape,
        skipped=skipped,
        _parts=parts,
    )


class StoreRows:
    """Some of a store's clips as a read-only array: `len`, `shape`, `ndim`, `size`, and slices read from disk, so
    chunked code written for arrays (`preprocessing.standardizer`) runs over a split without loading it."""

    def __init__(self, store: ClipStore, indices: np.ndarray) -> None:
        self.store, self.indices = store, np.asarray(indices, dtype=np.int64)
        self.shape = (len(self.indices), *store.feature_shape)
        self.ndim, self.size = len(self.shape), int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: slice) -> np.ndarray:
        return self.store.read(self.indices[index])


class StoreClips:
    """A split's clips on disk as `(x, y, track)` batches, for the loaders' index tensors or slices (as
    `batching.InMemoryClips` serves them from memory): rows read, then standardised as inference does it."""

    def __init__(self, store: ClipStore, indices: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None) -> None:
        import torch

        self.rows = StoreRows(store, indices)
        self.mean, self.std = mean, std
        self.labels = torch.as_tensor(store.labels[self.rows.indices])
        self.tracks = torch.as_tensor(store.track_index[self.rows.indices])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> tuple[Any, Any, Any]:
        import torch

        from genre_style.data.preprocessing import standardize

        if isinstance(index, torch.Tensor):
            index = index.numpy()
        x = standardize(self.rows.store.read(self.rows.indices[index]), self.mean, self.std)
        return torch.from_numpy(x), self.labels[index], self.tracks[index]
