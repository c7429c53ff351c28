"""Inference, defined once: a trained model with the preprocessing it was trained with, and a song's verdict.

Training's evaluation, `python -m genre_style.embed` and `predict`, the logged MLflow model and your own code all
go through this module, so a clip is cut, turned into features, standardised, embedded and voted on one way
(`genre_style.loading.load_model` finds the model wherever it is kept)::

    from genre_style.loading import load_model

    model = load_model("outputs/runs/<run>/artifacts/checkpoints/best.ckpt")  # or a run id, models:/<name>/<n>
    song = model.embed_file("song.wav")            # or model.embed_audio(waveform, sample_rate=44100)
    song.embeddings.shape, song.start_s[:3]        # (n_clips, 64) float32; each clip's start in seconds
    print(song.genre, song.probabilities)          # the song's verdict and its genre probabilities

A song's verdict (`song_probabilities`) is the softmax of its clips' mean logits: the clips' product of experts,
which is what training has always scored as `track_acc` (chosen on val; see docs/inference.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genre_style.data.audio import ClipSpec, load_mono
from genre_style.data.preprocessing import Preprocessing as Preprocessing
from genre_style.data.preprocessing import standardize as standardize
from genre_style.speedups import to_preferred_layout

log = logging.getLogger(__name__)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis."""
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def song_probabilities(clip_logits: np.ndarray) -> np.ndarray:
    """A song's genre probabilities from its clips' logits `[n_clips, n_genres]`: the softmax of their mean."""
    return softmax(np.asarray(clip_logits, dtype=np.float64).mean(axis=0))


@dataclass
class SongOutputs:
    """One piece of audio through a model: per clip, its embedding `[n, D]`, logits `[n, G]` (None without a
    classifier) and start time in seconds `[n]`; the song's verdict from them."""

    embeddings: np.ndarray
    logits: np.ndarray | None
    start_s: np.ndarray
    genres: list[str]

    @property
    def clip_probabilities(self) -> np.ndarray | None:
        """Each clip's genre probabilities `[n, G]`."""
        return None if self.logits is None else softmax(self.logits)

    @property
    def probabilities(self) -> np.ndarray | None:
        """The song's genre probabilities `[G]` (`song_probabilities`)."""
        return None if self.logits is None else song_probabilities(self.logits)

    @property
    def genre(self) -> str | None:
        """The song's verdict: its most probable genre."""
        probs = self.probabilities
        return None if probs is None else self.genres[int(probs.argmax())]

    @property
    def embedding(self) -> np.ndarray:
        """The song's embedding: the mean of its clips'."""
        return self.embeddings.mean(axis=0)


class Embedder:
    """A trained model plus its preprocessing: audio in, clip embeddings, genre probabilities and a verdict out."""

    def __init__(self, model: Any, genres: list[str], preprocessing: Preprocessing) -> None:
        self.model, self.genres, self.preprocessing = model, list(genres), preprocessing
        self.model.eval()

    @property
    def spec(self) -> ClipSpec:
        return self.preprocessing.spec

    @property
    def device(self) -> Any:
        """Where the model's weights are (a `torch.device`): inputs go there."""
        return next(self.model.parameters()).device

    @property
    def has_classifier(self) -> bool:
        return bool(getattr(self.model, "has_classifier", False))

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path) -> Embedder:
        """From a genre-style checkpoint (a run's `best.ckpt`): the model rebuilt from its hyperparameters."""
        from genre_style.model_files import model_class, read_checkpoint

        state = read_checkpoint(checkpoint)  # weights and plain data only: nothing in the file runs
        meta, data_state = state["genre_style"], state["GenreDataModule"]
        model = model_class(meta["model_class"], checkpoint)(**state["hyper_parameters"])
        model.load_state_dict(state["state_dict"])
        to_preferred_layout(model, "cpu")  # as training lays it out on the CPU: the same math, the same numbers
        return cls(model, list(meta["class_names"]), Preprocessing.from_state(data_state))

    def outputs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(embeddings `[n, D]`, logits `[n, G]` or None) for model inputs `x` `[n, *feature_shape]`, on the CPU;
        computed on the model's device (a GPU where it was moved to one)."""
        import torch

        with torch.no_grad():
            out = self.model(torch.as_tensor(x, device=self.device))
        logits = None if out.logits is None else out.logits.float().cpu().numpy()
        return out.embedding.float().cpu().numpy(), logits

    def embed_audio(
        self, signal: np.ndarray, sample_rate: int | None = None, max_clips: int | None = None, name: str = ""
    ) -> SongOutputs:
        """A mono waveform (float samples in [-1, 1], at `sample_rate`, default the model's) through the model."""
        clips = self.preprocessing.clips(signal, sample_rate, max_clips, name)
        embeddings, logits = self.outputs(self.preprocessing.features(clips))
        return SongOutputs(embeddings, logits, self.preprocessing.start_s(len(clips)), self.genres)

    def embed_file(self, path: str | Path, max_clips: int | None = None) -> SongOutputs:
        """An audio file (anything librosa decodes; stereo mixed down, resampled) through the model."""
        return self.embed_audio(load_mono(path, self.spec.sample_rate), None, max_clips, str(path))
