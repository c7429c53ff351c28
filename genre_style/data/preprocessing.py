"""The training -> inference contract for data, in one place: what turns audio into a model's input (the clip settings
and front-end, the training split's standardisation), how training fits it, and how it is saved in a checkpoint and
read back (`Preprocessing.to_state` / `from_state`). Training's data module writes it, inference reads it; both ask
here, so neither imports the other."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from genre_style.data.audio import ClipSpec, clip_features, segment

if TYPE_CHECKING:
    from genre_style.data.clip_store import StoreRows

log = logging.getLogger(__name__)


def standardize(x: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None) -> np.ndarray:
    """`(x - mean) / std` in place, in float32 (the training split's statistics; per band for maps)."""
    if mean is not None and std is not None:
        np.subtract(x, mean, out=x)
        np.divide(x, std, out=x)
    return x


def standardizer(train: np.ndarray | StoreRows, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation to z-score clips with: per feature for vectors, per band (shared over
    time, so a shift in time changes nothing) for (bands, frames) maps. Shaped to broadcast over one clip.
    Sums in float64 over chunks of clips: no float64 copy of the whole split (320 MB for 6000 log-mel maps), and a
    split on disk (`store.StoreRows`) is read a chunk at a time."""
    axes = (0, 2) if train.ndim == 3 else (0,)
    total = np.zeros(train.shape[1], dtype=np.float64)
    squares = np.zeros(train.shape[1], dtype=np.float64)
    for start in range(0, len(train), chunk):
        block = train[start : start + chunk].astype(np.float64)
        total += block.sum(axis=axes)
        squares += np.square(block).sum(axis=axes)
    count = train.size // train.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - np.square(mean), 0.0)) + 1e-8
    if train.ndim == 3:
        mean, std = mean[:, None], std[:, None]
    return mean.astype(np.float32), std.astype(np.float32)


@dataclass(frozen=True)
class Preprocessing:
    """What turns audio into a model's input: the clip settings and front-end (`spec`) and the training split's
    standardisation (`mean`, `std`, or None), as saved in every checkpoint."""

    spec: ClipSpec
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def to_state(self) -> dict[str, Any]:
        """The data module's part of a checkpoint (`GenreDataModule.state_dict`), plain data only."""
        return {
            "spec": self.spec.as_dict(),
            "standardize_mean": None if self.mean is None else self.mean.tolist(),
            "standardize_std": None if self.std is None else self.std.tolist(),
        }

    @classmethod
    def from_state(cls, data_state: dict[str, Any]) -> Preprocessing:
        """From the data module's part of a checkpoint (`to_state`; older checkpoints' spec keys it no longer has are
        dropped)."""
        known = {f.name for f in fields(ClipSpec)}
        spec = ClipSpec(**{k: v for k, v in data_state["spec"].items() if k in known})
        mean, std = data_state.get("standardize_mean"), data_state.get("standardize_std")
        as_array = lambda v: None if v is None else np.asarray(v, dtype=np.float32)  # noqa: E731
        return cls(spec, as_array(mean), as_array(std))

    def clips(
        self, signal: np.ndarray, sample_rate: int | None = None, max_clips: int | None = None, name: str = ""
    ) -> np.ndarray:
        """A mono waveform cut into the model's clips `[n, segment_samples]`, resampled from `sample_rate` first;
        audio shorter than one clip is padded with silence to one (with a warning)."""
        signal = np.asarray(signal, dtype=np.float32)
        if sample_rate and sample_rate != self.spec.sample_rate:
            import librosa

            signal = librosa.resample(signal, orig_sr=sample_rate, target_sr=self.spec.sample_rate, res_type="soxr_hq")
        if len(signal) < self.spec.segment_samples:
            seconds = len(signal) / self.spec.sample_rate
            log.warning("%s is shorter than one clip (%.2f s): padded with silence", name or "the audio", seconds)
            signal = np.pad(signal, (0, self.spec.segment_samples - len(signal)))
        return segment(signal, self.spec.segment_samples, self.spec.hop_samples, max_clips or sys.maxsize)

    def features(self, clips: np.ndarray) -> np.ndarray:
        """The model's input for clips `[n, segment_samples]`: `[n, *spec.feature_shape]` float32, standardised."""
        x = clip_features(clips, self.spec).reshape(len(clips), *self.spec.feature_shape)
        return standardize(np.ascontiguousarray(x, dtype=np.float32), self.mean, self.std)

    def start_s(self, n_clips: int) -> np.ndarray:
        """Each clip's start in seconds."""
        return np.arange(n_clips) * self.spec.hop_samples / self.spec.sample_rate
