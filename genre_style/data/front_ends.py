"""The front-ends: how a clip's samples become what a model reads, each defined once and asked everywhere.

A front-end has a name (`features=` in config), a kind that says what can be done with it (`map`: a (bands, frames)
time-frequency map; `waveform`: samples in time order, pooled or not; `vector`: values with no time axis), the shape
of one clip's features, and the computation from clips of samples. The data module, the config checks, augmentation,
encoders (which declare the kinds they read, `Encoder.reads`), inference and the report ask this registry.

Adding a front-end: a function here registered with `@front_end(name, kind, shape)`, and `conf/features/<name>.yaml`.
Kept free of torch so preprocessing workers and config checks stay light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np

if TYPE_CHECKING:
    from genre_style.data.audio import ClipSpec

Kind = Literal["map", "waveform", "vector"]
KINDS: tuple[Kind, ...] = ("map", "waveform", "vector")
DEFAULT = "raw_pool"  # the paper's
# The classical baseline's front-end and its settings (conf/features/stats.yaml): the bracket that downstream
# evaluation scores every embedding beside (genre_style/evaluation/brackets.py).
CLASSICAL = "stats"
CLASSICAL_SETTINGS = {"n_fft": 1024, "frame_hop": 512, "n_mfcc": 20, "n_mels": 64}
# The front-ends whose maps style transfer turns back into audio (style_transfer/inversion.py): mel power in dB.
INVERTIBLE = ("logmel",)
# Pretrained musicnn's input (models/pretrained/musicnn.py): its training's log-mel recipe, fixed (configuration.py).
MUSICNN = "musicnn_mel"
MUSICNN_RATE, MUSICNN_FFT, MUSICNN_HOP, MUSICNN_MELS = 16000, 512, 256, 96
# A transformers audio model's input (models/pretrained/hf.py): the waveform at the model's own rate, which only the
# model knows (its feature extractor's), so the encoder checks data.clips.sample_rate, not this registry.
HF_WAVEFORM = "waveform_hf"


@dataclass(frozen=True)
class FrontEnd:
    """One front-end: `compute(clips [n, samples] float32, spec) -> [n, prod(shape(spec))]` float32, flattened."""

    name: str
    kind: Kind
    shape: Callable[[ClipSpec], tuple[int, ...]]
    compute: Callable[[np.ndarray, ClipSpec], np.ndarray]
    description: str
    settings: tuple[str, ...] = ()  # the `data.*` settings it reads beyond the clip's (checked with the config)
    sample_rate: int | None = None  # the one `data.clips.sample_rate` it works at (a pretrained model's), None: any


REGISTRY: dict[str, FrontEnd] = {}


def front_end(
    name: str,
    kind: Kind,
    shape: Callable[[ClipSpec], tuple[int, ...]],
    settings: tuple[str, ...] = (),
    sample_rate: int | None = None,
) -> Callable:
    """Register the decorated `compute(clips, spec)` as front-end `name`; its docstring's first line describes it."""

    def register(compute: Callable[[np.ndarray, ClipSpec], np.ndarray]) -> Callable[[np.ndarray, ClipSpec], np.ndarray]:
        description = (compute.__doc__ or name).strip().splitlines()[0]
        REGISTRY[name] = FrontEnd(name, kind, shape, compute, description, settings, sample_rate)
        return compute

    return register


def get(name: str | None) -> FrontEnd:
    """The front-end called `name` (None: the paper's); ValueError naming the known ones otherwise."""
    try:
        return REGISTRY[name or DEFAULT]
    except KeyError:
        raise ValueError(f"unknown front-end features={name!r}; choose one of {', '.join(REGISTRY)}") from None


def names(kind: Kind | None = None) -> tuple[str, ...]:
    """Every front-end's name, or those of one kind."""
    return tuple(n for n, f in REGISTRY.items() if kind is None or f.kind == kind)


def average_pool(clips: np.ndarray, pool: int) -> np.ndarray:
    """Mean over non-overlapping windows of `pool` samples: `[n, L] -> [n, L // pool]` (tail dropped)."""
    width = clips.shape[1] // pool
    return clips[:, : width * pool].reshape(clips.shape[0], width, pool).mean(axis=2, dtype=np.float32)


def _frames(spec: ClipSpec) -> int:
    return 1 + spec.segment_samples // spec.frame_hop  # librosa's centred frames


@front_end("waveform", "waveform", lambda spec: (spec.segment_samples,))
def waveform(clips: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """The clip's samples as they are (20000)."""
    return np.array(clips, dtype=np.float32)


@front_end("raw_pool", "waveform", lambda spec: (spec.segment_samples // spec.pool,), settings=("pool",))
def raw_pool(clips: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """The paper's: the waveform average-pooled by `pool` (20000 samples -> R^500)."""
    return average_pool(clips, spec.pool)


@front_end("logmel", "map", lambda spec: (spec.n_mels, _frames(spec)), settings=("n_fft", "frame_hop", "n_mels"))
def logmel(clips: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """A log-mel map, (n_mels, frames): librosa's definitions in float32 (spectral.py)."""
    from genre_style.data import spectral

    return spectral.log_mel(clips, spec.sample_rate, spec.n_fft, spec.frame_hop, spec.n_mels).reshape(len(clips), -1)


@front_end("mfcc", "map", lambda spec: (spec.n_mfcc, _frames(spec)), settings=("n_fft", "frame_hop", "n_mels", "n_mfcc"))
def mfcc(clips: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """MFCCs, (n_mfcc, frames): librosa.feature.mfcc's, its dB map clipped 80 dB below the loudest value."""
    from genre_style.data import spectral

    bands = spectral.log_mel(clips, spec.sample_rate, spec.n_fft, spec.frame_hop, max(spec.n_mels, spec.n_mfcc), top_db=80.0)
    return spectral.mfcc(bands, spec.n_mfcc).reshape(len(clips), -1)


@front_end(
    "stats", "vector", lambda spec: (2 * (spec.n_mfcc + spec.n_mels),), settings=("n_fft", "frame_hop", "n_mels", "n_mfcc")
)
def stats(clips: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """The classical features: mean and standard deviation over time of n_mfcc MFCCs and n_mels log-mel bands."""
    from genre_style.data import spectral

    bands = spectral.log_mel(clips, spec.sample_rate, spec.n_fft, spec.frame_hop, spec.n_mels)  # [n, mels, frames]
    both = np.concatenate([spectral.mfcc(bands, spec.n_mfcc), bands], axis=1)
    return np.concatenate([both.mean(axis=2), both.std(axis=2)], axis=1).astype(np.float32)


@front_end(MUSICNN, "map", lambda spec: (MUSICNN_MELS, 1 + spec.segment_samples // MUSICNN_HOP), sample_rate=MUSICNN_RATE)
def musicnn_mel(clips: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """musicnn's input, (96, frames): 16 kHz mel power (FFT 512, hop 256) as log10(1 + 10000 x), in float32.

    musicnn's recipe (its extractor.py: librosa's centred frames, Slaney mel filters), except that musicnn computes
    the mel power in float16, which overflows (above 65504) on loud music and drops its embedding to chance; float32
    here. A clip's first and last frames see the clip's edge zero-padded, as librosa pads a file's. 47616-sample clips
    give the 187 frames (~3 s) musicnn was trained on; its convolutional layers take any length."""
    from genre_style.data import spectral

    # the rate is the front-end's `sample_rate`, which ClipSpec checks when it is built
    filters = spectral.mel_filterbank(MUSICNN_RATE, MUSICNN_FFT, MUSICNN_MELS)  # [mels, bins]
    out = np.empty((len(clips), MUSICNN_MELS, 1 + clips.shape[1] // MUSICNN_HOP), dtype=np.float32)
    for start in range(0, len(clips), 8):  # chunks: see spectral.log_mel
        power = spectral.power_spectrogram(clips[start : start + 8], MUSICNN_FFT, MUSICNN_HOP)  # [n, frames, bins]
        mel = np.matmul(power, filters.T).transpose(0, 2, 1)
        out[start : start + len(power)] = np.log10(1.0 + 10000.0 * mel)
    return out.reshape(len(clips), -1)


@front_end(HF_WAVEFORM, "waveform", lambda spec: (spec.segment_samples,))
def waveform_hf(clips: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """A transformers audio model's input (encoder=hf): the clip's samples at the model's rate, as they are.

    The model's own preparation (a wav2vec2-style extractor's per-clip zero mean and unit variance, AST's filter-bank
    frames) runs in the encoder, after augmentation: the model always reads what its feature extractor would give for
    the clip it is fed, in training, inference and the frozen-backbone cache alike."""
    return waveform(clips, spec)
