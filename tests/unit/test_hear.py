"""The HEAR API: the checks HEAR's validator makes (hearbenchmark/hear-validator), on white noise as it sends it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genre_style.hear as hear
from genre_style.data.audio import ClipSpec
from genre_style.inference import Embedder, Preprocessing
from genre_style.models.dsae import DeepSoftmaxAutoencoder

CNN = {"_target_": "genre_style.models.encoders.LogMelCNN", "channels": [4, 8], "dropout": 0.0}


@pytest.fixture(scope="module")
def model() -> hear.HearModel:
    """A log-mel CNN DSAE with its preprocessing, as a checkpoint rebuilds it (untrained: shapes are the point)."""
    torch.manual_seed(0)
    spec = ClipSpec(features="logmel", n_mels=64)
    network = DeepSoftmaxAutoencoder(
        input_shape=spec.feature_shape, num_classes=3, class_names=["a", "b", "c"], encoder=CNN, embedding_dim=16
    )
    return hear.HearModel(Embedder(network, ["a", "b", "c"], Preprocessing(spec)))


def _noise(n: int, seconds: float, sample_rate: int) -> torch.Tensor:
    return torch.rand((n, int(seconds * sample_rate))) * 2 - 1


def test_the_attributes_hear_reads(model):
    assert isinstance(model, torch.nn.Module) and model.sample_rate in (16000, 22050, 44100, 48000)
    assert model.scene_embedding_size == model.timestamp_embedding_size == 16
    assert isinstance(model.scene_embedding_size, int) and isinstance(model.timestamp_embedding_size, int)


@pytest.mark.parametrize("seconds", [1.07, 1.98, 4.0])
def test_timestamp_embeddings_pass_the_validators_checks(model, seconds):
    audio = _noise(2, seconds, model.sample_rate)
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    assert embeddings.dtype == torch.float32 and embeddings.ndim == 3 and timestamps.ndim == 2
    assert embeddings.shape[0] == 2 and embeddings.shape[:2] == timestamps.shape
    assert embeddings.shape[2] == model.timestamp_embedding_size
    diff = np.diff(timestamps.numpy())
    assert np.max(np.abs(diff - diff.mean())) <= 1 and diff.max() <= 50.0  # regular hops of at most 50 ms
    length_ms = 1000 * audio.shape[1] / model.sample_rate
    assert timestamps.min() <= diff.mean()  # from the start ...
    assert length_ms - diff.mean() <= timestamps.max() <= length_ms  # ... to the end, never past it
    assert torch.isfinite(embeddings).all()
    assert not torch.allclose(embeddings[0, 0], embeddings[0, -1])  # windows see different audio


def test_scene_embeddings_pass_the_validators_checks(model):
    embeddings = hear.get_scene_embeddings(_noise(4, 2.74, model.sample_rate), model)
    assert embeddings.dtype == torch.float32 and embeddings.shape == (4, model.scene_embedding_size)
    assert torch.isfinite(embeddings).all()


def test_a_timestamp_embedding_is_the_clip_embedding_of_its_window(model):
    """The window centred at t is the clip the model would embed starting at t - half a clip."""
    audio = _noise(1, 3.0, model.sample_rate)
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    k = 20  # 1000 ms
    window = model.embedder.spec.segment_samples
    centre = int(round(float(timestamps[0, k]) / 1000 * model.sample_rate))
    clip = audio[0, centre - window // 2 : centre - window // 2 + window].numpy()[None]
    torch.testing.assert_close(embeddings[0, k], model.embed_clips(clip)[0])


@pytest.mark.parametrize("seconds", [2.74, 0.5])
def test_scene_embedding_is_the_mean_of_the_sounds_consecutive_clips(model, seconds):
    """What `embed` reports for a song, computed here from windows cut by hand (get_scene_embeddings goes through
    embed_audio, so comparing the two would compare it with itself); a sound shorter than a clip is padded to one."""
    audio = _noise(1, seconds, model.sample_rate)
    scene = hear.get_scene_embeddings(audio, model)[0]
    signal, window, hop = audio[0].numpy(), model.embedder.spec.segment_samples, model.embedder.spec.hop_samples
    signal = np.pad(signal, (0, max(0, window - len(signal))))
    clips = np.stack([signal[s : s + window] for s in range(0, len(signal) - window + 1, hop)])
    assert len(clips) == (3 if seconds > 2 else 1)  # 2.74 s at 22050 Hz: three 20000-sample clips, the rest dropped
    torch.testing.assert_close(scene, model.embed_clips(clips).mean(dim=0), rtol=1e-5, atol=1e-6)


def test_timestamps_do_not_drift_over_long_audio():
    """HEAR's warning: a rounded hop accumulates; the centres are computed from their index."""
    times = hear.timestamps_ms(44100 * 3600, 44100)
    assert times[-1] == 3600 * 1000 and np.allclose(np.diff(times), 50.0)


def test_load_model_without_a_model_is_one_clear_error():
    from genre_style.errors import UserError

    with pytest.raises(UserError, match="needs a trained model"):
        hear.load_model("")
