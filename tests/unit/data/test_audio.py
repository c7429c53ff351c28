"""Decoding, segmenting and pooling: shapes and values a user's features depend on."""

from __future__ import annotations

import numpy as np
import pytest

from genre_style.data.audio import ClipSpec, load_mono, segment, track_clips
from genre_style.data.front_ends import average_pool
from genre_style.errors import AudioError
from tests.conftest import write_wav


def test_average_pool_of_a_ramp_gives_the_window_means():
    ramp = np.arange(20000, dtype=np.float32)[None, :]
    pooled = average_pool(ramp, 40)
    assert pooled.shape == (1, 500)
    # window k holds 40k .. 40k+39, whose mean is 40k + 19.5
    np.testing.assert_allclose(pooled[0], 40 * np.arange(500) + 19.5)


def test_average_pool_drops_an_incomplete_tail():
    assert average_pool(np.ones((3, 105), dtype=np.float32), 10).shape == (3, 10)


def test_segment_cuts_consecutive_windows_with_hop_and_cap():
    signal = np.arange(100, dtype=np.float32)
    clips = segment(signal, segment_samples=30, hop_samples=20, max_clips=10)
    assert clips.shape == (4, 30)  # starts 0, 20, 40, 60 (80 would run past the end)
    np.testing.assert_array_equal(clips[1], np.arange(20, 50))
    assert segment(signal, 30, 20, max_clips=2).shape == (2, 30)


def test_segment_rejects_a_signal_shorter_than_one_clip():
    with pytest.raises(AudioError, match="too short"):
        segment(np.zeros(10, dtype=np.float32), 20, 20, 5)


def test_track_clips_paper_shape(tmp_path):
    rng = np.random.default_rng(0)
    path = write_wav(tmp_path / "a.wav", 0.1 * rng.standard_normal(22050 * 3))
    clips = track_clips(path, ClipSpec())
    assert clips.shape == (3, 500) and clips.dtype == np.float32  # 66150 samples -> 3 clips of 20000


def test_load_mono_downmixes_stereo_and_resamples(tmp_path):
    t = np.arange(8000) / 8000
    stereo = np.stack([np.sin(2 * np.pi * 220 * t), np.zeros_like(t)], axis=1) * 0.5
    path = write_wav(tmp_path / "s.wav", stereo, sample_rate=8000)
    signal = load_mono(path, 22050)
    assert signal.ndim == 1
    assert abs(len(signal) - 22050) <= 1  # one second at the target rate
    assert 0.2 < np.abs(signal).max() < 0.3  # a mean of the two channels: half the left channel's 0.5


def test_load_mono_rejects_non_audio_and_empty_files(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    for path in (text, empty):
        with pytest.raises(AudioError, match="unreadable"):
            load_mono(path, 22050)


def test_load_mono_rejects_non_finite_samples(tmp_path):
    import soundfile as sf

    signal = np.zeros(22050, dtype=np.float32)
    signal[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, signal, 22050, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_mono(path, 22050)
