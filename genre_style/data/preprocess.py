"""Turn a list of tracks into a ClipTable, in parallel, reusing a cache keyed by files and settings."""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from genre_style.data.audio import ClipSpec, track_clips
from genre_style.data.clip_table import ClipTable
from genre_style.data.gtzan import Track
from genre_style.errors import AudioError, UserError

log = logging.getLogger(__name__)
CACHE_FORMAT = 2  # bump when cached arrays change (2: spectral front-ends by data/spectral.py, not librosa)


def cache_key(tracks: Sequence[Track], genres: Sequence[str], spec: ClipSpec) -> str:
    """Hash of every file's path, size and mtime plus the settings: any change means a new cache entry."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": CACHE_FORMAT, "spec": spec.as_dict(), "genres": list(genres)}).encode())
    for track in tracks:
        stat = track.path.stat()
        digest.update(f"{track.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def _extract(job: tuple[str, ClipSpec]) -> tuple[np.ndarray | None, str | None]:
    path, spec = job
    try:
        return track_clips(path, spec), None
    except AudioError as exc:
        return None, str(exc)


def _worker_setup() -> None:
    """Start-up of a preprocessing process. One BLAS thread: the mel projection is a small matrix product per
    track, two workers each running BLAS's default thread per core made the log-mel front-end 2.6x slower than
    one worker, and the product's last bits depend on the thread count (one thread: the same cache on every
    machine). And keep freed arrays on the heap: glibc maps each array above its adaptive threshold fresh and
    returns it when freed, so every track page-faulted its ~10 MB of spectral temporaries in again (2x slower)."""
    threadpool_limits(1)
    _keep_freed_memory()


def _keep_freed_memory() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): its allocator's defaults stay
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameters
    libc.mallopt(m_mmap_threshold, 32 << 20)  # arrays up to 32 MB from the heap (glibc's largest allowed)
    libc.mallopt(m_trim_threshold, 256 << 20)  # and up to 256 MB of freed heap kept for the next track


def resolve_workers(workers: int | None) -> int:
    """0 or None means every core."""
    if not workers:
        return os.cpu_count() or 1
    return max(1, int(workers))


def build_clip_table(
    tracks: Sequence[Track],
    genres: Sequence[str],
    spec: ClipSpec,
    workers: int | None = None,
    progress: bool = True,
    allow_empty: bool = False,
) -> ClipTable:
    """Decode, segment and pool every track; unusable files are skipped with a warning and recorded. A table with
    no usable track is an error unless `allow_empty` (one part of a disk store may have none)."""
    from tqdm.auto import tqdm

    workers = min(resolve_workers(workers), max(1, len(tracks)))
    jobs = [(str(t.path), spec) for t in tracks]
    bar = dict(total=len(jobs), desc="preprocessing audio", unit="track", disable=not progress)
    if workers == 1:
        _keep_freed_memory()
        with threadpool_limits(1):
            results = [_extract(job) for job in tqdm(jobs, **bar)]
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_worker_setup) as pool:
            results = list(tqdm(pool.map(_extract, jobs, chunksize=4), **bar))

    genre_index = {g: i for i, g in enumerate(genres)}
    features: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    track_index: list[np.ndarray] = []
    track_ids: list[str] = []
    track_labels: list[int] = []
    skipped: list[dict] = []
    for track, (clips, reason) in zip(tracks, results):
        if clips is None:
            log.warning("skipping %s: %s", track.path, reason)
            skipped.append({"path": str(track.path), "reason": reason})
            continue
        features.append(clips)
        labels.append(np.full(len(clips), genre_index[track.genre], dtype=np.int64))
        track_index.append(np.full(len(clips), len(track_ids), dtype=np.int64))
        track_ids.append(track.track_id)
        track_labels.append(genre_index[track.genre])
    if not features and allow_empty:
        features.append(np.zeros((0, spec.feature_dim), dtype=np.float32))
        labels.append(np.zeros(0, dtype=np.int64))
        track_index.append(np.zeros(0, dtype=np.int64))
    if not features:
        raise UserError(
            f"none of the {len(tracks)} audio files could be used (first problem: {skipped[0]['reason'] if skipped else 'no files'})",
            "check the files decode (e.g. with `soxi` or `python -c 'import soundfile; soundfile.read(PATH)'`)",
        )
    return ClipTable(
        features=np.concatenate(features),
        labels=np.concatenate(labels),
        track_index=np.concatenate(track_index),
        genres=list(genres),
        track_ids=track_ids,
        track_labels=np.asarray(track_labels, dtype=np.int64),
        skipped=skipped,
    )


def load_or_build(
    tracks: Sequence[Track],
    genres: Sequence[str],
    spec: ClipSpec,
    cache_dir: str | Path | None,
    workers: int | None = None,
    progress: bool = True,
) -> tuple[ClipTable, Path | None, bool]:
    """Return (table, cache file, whether it was a cache hit). A cache that fails to load is rebuilt."""
    if cache_dir is None:
        return build_clip_table(tracks, genres, spec, workers, progress), None, False
    path = Path(cache_dir) / f"clips-{cache_key(tracks, genres, spec)}.npz"
    if path.exists():
        try:
            return ClipTable.load(path), path, True
        except Exception as exc:  # a damaged file is never trusted: rebuild it
            log.warning("cache %s is unreadable (%s); rebuilding it", path, exc)
    table = build_clip_table(tracks, genres, spec, workers, progress)
    try:
        table.save(path)
    except OSError as exc:
        log.warning("could not write the cache %s (%s); going on without it", path, exc)
        return table, None, False
    return table, path, False
