"""The HEAR API (Turian et al., 2022; hearbenchmark.com/hear-api.html), so hear-eval-kit can score any genre-style model.

    import genre_style.hear as hear

    model = hear.load_model("outputs/runs/<run>/artifacts/checkpoints/best.ckpt")  # or a run id, models:/<name>/<n>
    scene = hear.get_scene_embeddings(audio, model)              # [n_sounds, D] float32
    frames, ms = hear.get_timestamp_embeddings(audio, model)     # [n_sounds, n_frames, D], [n_sounds, n_frames]

`audio` is a float tensor `[n_sounds, n_samples]` in [-1, 1] at `model.sample_rate` (the rate the model was trained
at), on the model's device. The embeddings are the model's clip embeddings (the bottleneck), computed through the
same preprocessing as training (`genre_style.inference`):
- timestamp embeddings: one clip-long window centred on every `TIMESTAMP_HOP_MS` (the audio padded with silence by
  half a window at both ends), timestamps in milliseconds at the window centres, from 0 to the audio's end;
- scene embeddings: the mean embedding of the sound's consecutive clips, as `embed` and `predict` compute a song's.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from genre_style.inference import Embedder

TIMESTAMP_HOP_MS = 50.0  # HEAR suggests at most 50 ms (its music-transcription tolerance)
WINDOWS_PER_BATCH = 256  # windows through the model at a time: memory flat in the audio's length


class HearModel(torch.nn.Module):
    """A genre-style model with the attributes the HEAR API asks for; `.to(device)` moves the network."""

    def __init__(self, embedder: Embedder) -> None:
        super().__init__()
        self.embedder = embedder
        self.network = embedder.model  # registered as a submodule: .to() and .parameters() reach it
        self.sample_rate = int(embedder.spec.sample_rate)
        self.scene_embedding_size = int(embedder.model.embedding_dim)
        self.timestamp_embedding_size = int(embedder.model.embedding_dim)

    @property
    def device(self) -> torch.device:
        return self.embedder.device

    def embed_clips(self, clips: np.ndarray) -> torch.Tensor:
        """Clip embeddings `[n, D]` float32 on the model's device for waveform clips `[n, segment_samples]`,
        through `Embedder.outputs` a batch at a time."""
        features = self.embedder.preprocessing.features
        chunks = [
            self.embedder.outputs(features(clips[start : start + WINDOWS_PER_BATCH]))[0]
            for start in range(0, len(clips), WINDOWS_PER_BATCH)
        ]
        return torch.as_tensor(np.concatenate(chunks), device=self.device)


def load_model(model_file_path: str = "", tracking_uri: str | None = None) -> HearModel:
    """A trained genre-style model: a checkpoint, an MLflow run id or a logged MLflow model (`models:/...`)."""
    from genre_style.errors import UserError
    from genre_style.loading import load_model as load_embedder

    if not model_file_path:
        raise UserError(
            "genre_style.hear.load_model needs a trained model", "pass a best.ckpt, an MLflow run id or models:/<name>/<n>"
        )
    return HearModel(load_embedder(model_file_path, tracking_uri))


def _as_numpy(audio: torch.Tensor) -> np.ndarray:
    if audio.ndim != 2:
        raise ValueError(f"audio must be [n_sounds, n_samples], got shape {tuple(audio.shape)}")
    return audio.detach().to("cpu", torch.float32).numpy()


def timestamps_ms(n_samples: int, sample_rate: int, hop_ms: float = TIMESTAMP_HOP_MS) -> np.ndarray:
    """Window centres in ms: every `hop_ms` from 0 to the audio's end, each computed from its index (no
    accumulated rounding, as HEAR's validator warns)."""
    duration_ms = 1000.0 * n_samples / sample_rate
    return np.arange(int(math.floor(duration_ms / hop_ms + 1e-9)) + 1) * hop_ms


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings `[n_sounds, n_frames, D]` float32 every TIMESTAMP_HOP_MS and their timestamps `[n_sounds, n_frames]`
    in ms, on the audio's device."""
    sounds = _as_numpy(audio)
    window = model.embedder.spec.segment_samples
    centres_ms = timestamps_ms(sounds.shape[1], model.sample_rate)
    starts = np.rint(centres_ms / 1000.0 * model.sample_rate).astype(np.int64)  # centre in samples; window from -w/2
    padded = np.pad(sounds, ((0, 0), (window // 2, window - window // 2)))
    per_sound = []
    for sound in padded:  # windows cut a batch at a time: memory flat in the audio's length
        chunks = [starts[i : i + WINDOWS_PER_BATCH] for i in range(0, len(starts), WINDOWS_PER_BATCH)]
        per_sound.append(torch.cat([model.embed_clips(sound[c[:, None] + np.arange(window)]) for c in chunks]))
    embeddings = torch.stack(per_sound)
    times = torch.as_tensor(centres_ms, dtype=torch.float32).expand(len(sounds), -1)
    return embeddings.to(audio.device), times.contiguous().to(audio.device)


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """One embedding per sound `[n_sounds, D]` float32: the mean of its clips' embeddings (shorter sounds padded)."""
    scenes = [model.embedder.embed_audio(sound, name="a HEAR sound").embedding for sound in _as_numpy(audio)]
    return torch.as_tensor(np.stack(scenes), dtype=torch.float32, device=audio.device)
