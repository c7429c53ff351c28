"""Decode one audio file and turn it into fixed-size clip vectors (the paper's raw front-end).

Kept free of torch so preprocessing workers start fast.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from genre_style.errors import AudioError


@dataclass(frozen=True)
class ClipSpec:
    """How a track becomes clips: the preprocessing settings that key the cache."""

    sample_rate: int = 22050
    segment_samples: int = 20000
    hop_samples: int = 20000
    clips_per_track: int = 20
    pool: int = 40
    features: str = "raw_pool"  # raw_pool (the paper's) | logmel | mfcc | waveform | stats
    n_fft: int = 2048
    frame_hop: int = 1024
    n_mels: int = 40
    n_mfcc: int = 20

    @property
    def frames(self) -> int:
        return 1 + self.segment_samples // self.frame_hop  # librosa's centred frames

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """One clip's features as the model sees them: a (bands, frames) map keeps its time axis."""
        if self.features == "logmel":
            return (self.n_mels, self.frames)
        if self.features == "mfcc":
            return (self.n_mfcc, self.frames)
        if self.features == "waveform":
            return (self.segment_samples,)
        if self.features == "stats":
            return (2 * (self.n_mfcc + self.n_mels),)
        return (self.segment_samples // self.pool,)

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
            raise AudioError(f"unreadable audio ({sf_error})") from sf_error
    import librosa

    signal, rate = librosa.load(str(path), sr=None, mono=False)
    return (signal.T if signal.ndim == 2 else signal), int(rate)


def segment(signal: np.ndarray, segment_samples: int, hop_samples: int, max_clips: int) -> np.ndarray:
    """Cut consecutive windows `[n, segment_samples]` (a view, no copy); at most `max_clips` of them."""
    if signal.shape[0] < segment_samples:
        raise AudioError(f"too short: {signal.shape[0]} samples, a clip needs {segment_samples}")
    windows = np.lib.stride_tricks.sliding_window_view(signal, segment_samples)[::hop_samples]
    return windows[:max_clips]


def average_pool(clips: np.ndarray, pool: int) -> np.ndarray:
    """Mean over non-overlapping windows of `pool` samples: `[n, L] -> [n, L // pool]` (tail dropped)."""
    width = clips.shape[1] // pool
    return clips[:, : width * pool].reshape(clips.shape[0], width, pool).mean(axis=2, dtype=np.float32)


FRONT_ENDS = ("raw_pool", "logmel", "mfcc", "waveform", "stats")


def clip_features(clips: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """Each clip's features flattened, `[n, feature_dim]` (reshape to `spec.feature_shape` for the model):
    pooled or raw waveform, a log-mel / MFCC map, or the classical statistics (mean and standard deviation
    over time of MFCCs and log-mel bands)."""
    if spec.features == "raw_pool":
        return average_pool(clips, spec.pool)
    if spec.features == "waveform":
        return np.array(clips, dtype=np.float32)
    if spec.features not in FRONT_ENDS:
        raise ValueError(f"unknown front-end {spec.features!r}; choose from {FRONT_ENDS}")
    from genre_style.data import spectral

    if spec.features == "mfcc":  # librosa.feature.mfcc(y=...): its dB map clipped 80 dB below the loudest value
        bands = spectral.log_mel(clips, spec.sample_rate, spec.n_fft, spec.frame_hop, max(spec.n_mels, spec.n_mfcc), top_db=80.0)
        return spectral.mfcc(bands, spec.n_mfcc).reshape(len(clips), -1)
    logmel = spectral.log_mel(clips, spec.sample_rate, spec.n_fft, spec.frame_hop, spec.n_mels)  # [n, mels, frames]
    if spec.features == "logmel":
        return logmel.reshape(len(clips), -1)
    both = np.concatenate([spectral.mfcc(logmel, spec.n_mfcc), logmel], axis=1)  # stats: the classical features
    return np.concatenate([both.mean(axis=2), both.std(axis=2)], axis=1).astype(np.float32)


def track_clips(path: str | Path, spec: ClipSpec) -> np.ndarray:
    """The clip vectors `[n_clips, feature_dim]` of one file."""
    signal = load_mono(path, spec.sample_rate)
    clips = segment(signal, spec.segment_samples, spec.hop_samples, spec.clips_per_track)
    return clip_features(clips, spec)
