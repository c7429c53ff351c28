"""The fast spectral front-ends compute what librosa computes (the definitions every earlier cache and model used)."""

import librosa
import numpy as np
import pytest

from genre_style.data.audio import ClipSpec, clip_features
from genre_style.data.spectral import mel_filterbank


@pytest.fixture(scope="module")
def clips() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(20000) / 22050
    tones = np.sin(2 * np.pi * np.outer(rng.uniform(60, 8000, 6), t))
    clips = (0.3 * tones + 0.05 * rng.standard_normal((6, 20000))).astype(np.float32)
    clips[:, :4000] *= 1e-4  # a near-silent stretch: exercises the dB floor and the top_db clip
    return clips


def librosa_features(clips: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """The front-ends as they were written with librosa (genre-style up to 2026-11-28)."""
    if spec.features == "mfcc":
        maps = librosa.feature.mfcc(
            y=clips,
            sr=spec.sample_rate,
            n_mfcc=spec.n_mfcc,
            n_fft=spec.n_fft,
            hop_length=spec.frame_hop,
            n_mels=max(spec.n_mels, spec.n_mfcc),
        )
        return maps.reshape(len(clips), -1)
    mel = librosa.feature.melspectrogram(
        y=clips, sr=spec.sample_rate, n_fft=spec.n_fft, hop_length=spec.frame_hop, n_mels=spec.n_mels
    )
    logmel = librosa.power_to_db(mel, ref=1.0, top_db=None)
    if spec.features == "logmel":
        return logmel.reshape(len(clips), -1)
    both = np.concatenate([librosa.feature.mfcc(S=logmel, n_mfcc=spec.n_mfcc), logmel], axis=1)
    return np.concatenate([both.mean(axis=2), both.std(axis=2)], axis=1)


@pytest.mark.parametrize("sample_rate,n_fft,n_mels", [(22050, 1024, 64), (22050, 2048, 40), (16000, 512, 20)])
def test_mel_filters_are_librosas(sample_rate: int, n_fft: int, n_mels: int) -> None:
    ours = mel_filterbank(sample_rate, n_fft, n_mels)
    theirs = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize(
    "features,n_fft,frame_hop,n_mels",
    [
        ("logmel", 1024, 256, 64),  # experiment=best's map
        ("logmel", 2048, 1024, 40),  # the front-end's defaults
        ("mfcc", 2048, 1024, 40),
        ("mfcc", 512, 128, 10),  # fewer mel bands than MFCCs: the bands are raised to n_mfcc
        ("stats", 1024, 512, 64),
    ],
)
def test_front_ends_match_librosa(clips: np.ndarray, features: str, n_fft: int, frame_hop: int, n_mels: int) -> None:
    spec = ClipSpec(features=features, n_fft=n_fft, frame_hop=frame_hop, n_mels=n_mels)
    ours = clip_features(clips, spec)
    theirs = librosa_features(clips, spec)
    assert ours.shape == theirs.shape == (len(clips), spec.feature_dim)
    assert ours.dtype == np.float32
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, atol=2e-6 * scale, rtol=0)


def test_the_musicnn_front_end_is_musicnns_log_mel_in_float32():
    """musicnn's extractor: librosa's melspectrogram at 16 kHz (FFT 512, hop 256, 96 bands), log10(1 + 10000 x); in
    float32 where musicnn casts to float16 (which overflows on loud music)."""
    from genre_style.data import front_ends

    rng = np.random.default_rng(1)
    t = np.arange(47616) / 16000
    clips = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * rng.standard_normal((2, 47616))).astype(np.float32)
    spec = ClipSpec(sample_rate=16000, segment_samples=47616, features=front_ends.MUSICNN)
    ours = clip_features(clips, spec).reshape(2, *spec.feature_shape)
    mel = librosa.feature.melspectrogram(y=clips.astype(np.float64), sr=16000, n_fft=512, hop_length=256, n_mels=96)
    assert ours.dtype == np.float32 and ours.shape == (2, 96, 187)
    np.testing.assert_allclose(ours, np.log10(10000 * mel + 1), atol=1e-5)
