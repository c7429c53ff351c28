"""Decode one audio file and turn it into fixed-size clip vectors (the paper's raw front-end).

Kept free of torch so preprocessing workers start fast.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from genre_style.data import front_ends
from genre_style.data.front_ends import FrontEnd
from genre_style.errors import AudioError, UserError


@dataclass(frozen=True)
class ClipSpec:
    """How a track becomes clips: the preprocessing settings that key the cache."""

    sample_rate: int = 22050
    segment_samples: int = 20000
    hop_samples: int = 20000
    clips_per_track: int = 20
    pool: int = 40
    features: str = front_ends.DEFAULT  # a front-end's name (front_ends.REGISTRY)
    n_fft: int = 2048
    frame_hop: int = 1024
    n_mels: int = 40
    n_mfcc: int = 20

    def __post_init__(self) -> None:
        """The clip's own rules: a registered front-end, at the rate it needs, pooling by at most a clip."""
        if self.features not in front_ends.REGISTRY:
            raise UserError(f"unknown front-end features={self.features!r}", f"use one of {', '.join(front_ends.REGISTRY)}")
        needed = self.front_end.sample_rate
        if needed and self.sample_rate != needed:
            raise UserError(
                f"features={self.features} works at data.clips.sample_rate={needed}, not {self.sample_rate}",
                f"drop data.clips.sample_rate={self.sample_rate}",
            )
        if "pool" in self.front_end.settings and self.pool > self.segment_samples:
            raise UserError(
                f"data.clips.pool={self.pool} is longer than a clip (data.clips.segment_samples={self.segment_samples})",
                "pool by at most the clip length, e.g. data.clips.pool=40 for 20000-sample clips",
            )

    @property
    def front_end(self) -> FrontEnd:
        return front_ends.get(self.features)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """One clip's features as the model sees them: a (bands, frames) map keeps its time axis."""
        return self.front_end.shape(self)

    @property
    def feature_dim(self) -> int:
        return math.prod(self.feature_shape)

    def as_dict(self) -> dict:
        return asdict(self)


def load_mono(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode to float32 mono at `sample_rate`; raise AudioError when the file can't be used."""
    path = Path(path)
    try:
        signal, native_rate = _decode(path)
    except AudioError:
        raise
    except Exception as exc:  # decoders raise many types for a broken file; all mean "skip it"
        raise AudioError(f"unreadable audio ({type(exc).__name__}: {exc})") from exc
    if signal.ndim == 2:
        signal = signal[:, 0] if signal.shape[1] == 1 else signal.mean(axis=1)
    if signal.size == 0:
        raise AudioError("no audio samples")
    # One float64 sum instead of an isfinite pass: any NaN or inf makes it non-finite, and samples in
    # [-1, 1] can't overflow it.
    if not np.isfinite(np.sum(signal, dtype=np.float64)):
        raise AudioError("audio holds NaN or infinite samples")
    if native_rate != sample_rate:
        import librosa  # lazy: costs seconds to import, only needed for files at another rate

        signal = librosa.resample(signal, orig_sr=native_rate, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(signal, dtype=np.float32)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        signal, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return signal, int(rate)
    except sf.LibsndfileError as sf_error:
        if path.suffix.lower() in (".wav", ".au", ".flac", ".ogg"):
            # libsndfile reads these natively: failing here means the file itself is broken.
            raise AudioError(f"unreadable audio ({sndfile_reason(sf_error)})") from sf_error
    import librosa

    signal, rate = librosa.load(str(path), sr=None, mono=False)
    return (signal.T if signal.ndim == 2 else signal), int(rate)


def sndfile_reason(exc: Exception) -> str:
    """libsndfile's reason without the path it repeats: "Error opening 'x.wav': Format not recognised." -> the end
    (a skipped file is named once, by whoever says it is skipped)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.rsplit("': ", 1)[-1].rstrip(".")


def segment(signal: np.ndarray, segment_samples: int, hop_samples: int, max_clips: int) -> np.ndarray:
    """Cut consecutive windows `[n, segment_samples]` (a view, no copy); at most `max_clips` of them."""
    if signal.shape[0] < segment_samples:
        raise AudioError(f"too short: {signal.shape[0]} samples, a clip needs {segment_samples}")
    windows = np.lib.stride_tricks.sliding_window_view(signal, segment_samples)[::hop_samples]
    return windows[:max_clips]


def clip_features(clips: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """Each clip's features flattened, `[n, feature_dim]` (reshape to `spec.feature_shape` for the model), as the
    front-end `spec.features` computes them (genre_style/data/front_ends.py)."""
    return spec.front_end.compute(clips, spec)


def track_clips(path: str | Path, spec: ClipSpec) -> np.ndarray:
    """The clip vectors `[n_clips, feature_dim]` of one file."""
    signal = load_mono(path, spec.sample_rate)
    clips = segment(signal, spec.segment_samples, spec.hop_samples, spec.clips_per_track)
    return clip_features(clips, spec)
