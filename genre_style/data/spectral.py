"""Log-mel maps and MFCCs of many clips at once, in float32 with scipy's FFT.

librosa's definitions (centred frames, zero padding, periodic Hann window, Slaney mel filters, dB with amin 1e-10,
orthonormal DCT-II), reimplemented because librosa's path costs more than the numbers: importing its filters pulls
in numba (~1.2 s per preprocessing process) and it computes in float64 where it can. Outputs match librosa to
~1e-5 dB (tests/unit/data/test_spectral.py); the `log-mel maps` case of benchmarks/bench_preprocess.py measures the gain.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

AMIN = 1e-10  # power floor before the logarithm (librosa's amin)


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa's default, htk=False)."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_region = hz >= 1000.0
    return np.where(log_region, 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / (np.log(6.4) / 27.0), mel)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * (200.0 / 3)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), hz)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """`[n_mels, 1 + n_fft // 2]` triangular filters from 0 Hz to Nyquist, area-normalised (Slaney)."""
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
    mel_freqs = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0), n_mels + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=8)
def _filters_by_bin(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """The filter bank as a contiguous `[bins, n_mels]` matrix: one BLAS call maps every frame (a stacked 3-D
    product is a loop of small ones, twice as slow)."""
    return np.ascontiguousarray(mel_filterbank(sample_rate, n_fft, n_mels).T)


@lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)  # periodic


def power_spectrogram(clips: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """`[n, L] -> [n, frames, 1 + n_fft // 2]` power of centred, zero-padded, Hann-windowed frames."""
    import scipy.fft

    padded = np.pad(np.asarray(clips, dtype=np.float32), ((0, 0), (n_fft // 2, n_fft // 2)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1)[:, ::hop] * _hann(n_fft)
    spectrum = scipy.fft.rfft(frames, axis=-1, overwrite_x=True)
    return np.square(spectrum.real) + np.square(spectrum.imag)


def log_mel(
    clips: np.ndarray, sample_rate: int, n_fft: int, hop: int, n_mels: int, top_db: float | None = None, chunk: int = 8
) -> np.ndarray:
    """`[n, L] -> [n, n_mels, frames]` mel power in dB (ref 1.0); `top_db` clips everything more than that
    below the batch's loudest value, as librosa's `power_to_db` does. Computed `chunk` clips at a time: a
    track's 20 clips at once need ~20 MB of temporaries, which the allocator maps and unmaps on every call (2.3x
    slower per clip than chunks of 5-10, measured); every value is the same either way."""
    filters = _filters_by_bin(sample_rate, n_fft, n_mels)
    clips = np.asarray(clips, dtype=np.float32)
    out = np.empty((len(clips), n_mels, 1 + clips.shape[1] // hop), dtype=np.float32)
    for start in range(0, len(clips), chunk):
        power = power_spectrogram(clips[start : start + chunk], n_fft, hop)
        n, frames, bins = power.shape
        mel = (power.reshape(n * frames, bins) @ filters).reshape(n, frames, n_mels)
        out[start : start + n] = (10.0 * np.log10(np.maximum(mel, AMIN))).transpose(0, 2, 1)
    if top_db is not None:
        out = np.maximum(out, out.max() - top_db)
    return out


def mfcc(log_mel_map: np.ndarray, n_mfcc: int) -> np.ndarray:
    """`[n, n_mels, frames] -> [n, n_mfcc, frames]`: orthonormal DCT-II over the bands (librosa's MFCC)."""
    import scipy.fft

    return scipy.fft.dct(log_mel_map, type=2, norm="ortho", axis=1)[:, :n_mfcc].astype(np.float32)
