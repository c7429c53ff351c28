"""The pooled clips of a whole corpus, in one set of arrays, plus what was skipped and why."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


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

    def __len__(self) -> int:
        return int(self.features.shape[0])

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
