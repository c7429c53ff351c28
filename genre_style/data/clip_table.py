"""The pooled clips of a whole corpus, in one set of arrays, plus what was skipped and why."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from genre_style.data.gtzan import Track


@dataclass
class ClipTable:
    """Clip vectors with their genre label and the track they come from (index into `track_ids`)."""

    features: np.ndarray  # float32 [n_clips, feature_dim]
    labels: np.ndarray  # int64 [n_clips], index into `genres`
    track_index: np.ndarray  # int64 [n_clips], index into `track_ids`
    genres: list[str]
    track_ids: list[str]
    track_labels: np.ndarray  # int64 [n_tracks]
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"} per file not used
    # What the corpus says of each track beyond its genre (a manifest's split and artist; None where not given), by
    # track index. Never cached: they come from the corpus each time (`carry`), so an edited manifest counts.
    track_splits: list[str | None] = field(default_factory=list)
    track_groups: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def carry(self, tracks: Sequence[Track]) -> ClipTable:
        """Take each track's `split` and `group` from the corpus's tracks (matched by track id); returns self."""
        by_id = {track.track_id: track for track in tracks}
        found = [by_id.get(track_id) for track_id in self.track_ids]
        self.track_splits = [t.split if t is not None else None for t in found]
        self.track_groups = [t.group if t is not None else None for t in found]
        return self

    def save(self, path: str | Path) -> None:
        """Write atomically: a temporary file in the same folder, then a rename, so a kill never leaves half a cache."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"genres": self.genres, "track_ids": self.track_ids, "skipped": self.skipped}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(
                    handle,
                    features=self.features,
                    labels=self.labels,
                    track_index=self.track_index,
                    track_labels=self.track_labels,
                    meta=np.array(json.dumps(meta)),
                )
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> ClipTable:
        with np.load(path, allow_pickle=False) as arrays:
            meta = json.loads(str(arrays["meta"]))
            return cls(
                features=arrays["features"],
                labels=arrays["labels"],
                track_index=arrays["track_index"],
                track_labels=arrays["track_labels"],
                genres=meta["genres"],
                track_ids=meta["track_ids"],
                skipped=meta["skipped"],
            )
