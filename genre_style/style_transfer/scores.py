"""A transfer's score, never from the model that made it: judges (other trained models) read the output back from
its WAV file and give the target genre's probability and whether their verdict is the target (a flip), and two
measures say how much of the content is left: chroma correlation (harmony, melody) and onset-envelope correlation
(rhythm) with the content, and, where basic-pitch is installed, the notes kept (`notes.py`: note F1 and the pitch
Jaccard distance between the content's and the output's transcriptions)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genre_style.errors import UserError
from genre_style.inference import Embedder
from genre_style.style_transfer import notes

CONTENT_MEASURES = ("chroma_corr", "onset_corr")
NOTE_MEASURES = ("note_precision", "note_recall", "note_f1", "pitch_jaccard_dist")


@dataclass
class Judge:
    """A trained model that scores transfers: any loadable model with a classifier, named for tables."""

    name: str
    embedder: Embedder

    def __post_init__(self) -> None:
        if not self.embedder.has_classifier:
            raise UserError(f"judge {self.name} has no classifier, so no verdict", "judge with a model that predicts genres")

    def check_genre(self, genre: str) -> None:
        if genre not in self.embedder.genres:
            raise UserError(
                f"judge {self.name} knows no genre {genre!r} (it knows {', '.join(self.embedder.genres)})",
                "judge with models trained on the style's genre, or give a style of a genre they know",
            )

    def score(self, path: str | Path, target: str) -> dict[str, float]:
        """`target_prob` and `flip` (1.0 if the song's verdict is `target`) of the audio file at `path`."""
        self.check_genre(target)
        song = self.embedder.embed_file(path)
        probabilities = song.probabilities
        assert probabilities is not None
        return {"target_prob": float(probabilities[self.embedder.genres.index(target)]), "flip": float(song.genre == target)}


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    frames = min(a.shape[-1], b.shape[-1])
    a, b = a[..., :frames].ravel(), b[..., :frames].ravel()
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def content_kept(
    content: np.ndarray, output: np.ndarray, sample_rate: int, content_notes: notes.Notes | None = None
) -> dict[str, float]:
    """Pearson correlations between the content and the output of their chromagrams (12 pitch classes x frames,
    librosa's `chroma_stft`) and of their onset-strength envelopes: 1 = the same notes and rhythm in the same places.
    With `content_notes` (the content's transcription, `notes.transcribe`: made once for all of a content's outputs),
    also the output's notes against them: note precision/recall/F1 and the pitch Jaccard distance (`notes.py`)."""
    import librosa

    chroma = [librosa.feature.chroma_stft(y=s, sr=sample_rate) for s in (content, output)]
    onsets = [librosa.onset.onset_strength(y=s, sr=sample_rate) for s in (content, output)]
    kept = {"chroma_corr": _correlation(*chroma), "onset_corr": _correlation(*onsets)}
    if content_notes is not None:
        kept.update(notes.notes_kept(content_notes, output, sample_rate))
    return kept
