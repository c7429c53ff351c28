"""Content judged by notes: audio transcribed by basic-pitch's model (Spotify, Apache-2.0; its ONNX file from the
wheel, run by onnxruntime: no TensorFlow), then the output's notes compared with the content's.

- `note_scores`: mir_eval's note precision, recall and F1 with onsets within 50 ms and the same pitch (offsets
  ignored: a style may hold or cut a note), the content's notes the reference.
- `pitch_jaccard_distance`: Cifka et al. 2021's content measure: per frame, 1 - |pitches in both| / |pitches in
  either|, averaged over frames (0 = the same pitches sounding at the same times; a frame where neither sounds
  counts 0, as theirs does).
Chroma and onset-envelope correlations (scores.content_kept) say "the same harmony and rhythm"; these say "the same
notes", which a transcription model trained on many instruments reads across timbres.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from genre_style.errors import UserError

INSTALL = "pip install 'genre-style[transfer]' && pip install --no-deps basic-pitch==0.4.0"
FRAME_S = 0.01  # pitch_jaccard_distance's frame


@dataclass(frozen=True)
class Notes:
    """Transcribed (or known) notes: `intervals` `[n, 2]` onset and offset in seconds, `pitches` `[n]` MIDI numbers."""

    intervals: np.ndarray
    pitches: np.ndarray

    def __len__(self) -> int:
        return len(self.pitches)

    @classmethod
    def from_events(cls, events: Any) -> Notes:
        """From `(start, end, pitch, ...)` tuples (basic-pitch's note events; a rendered corpus's notes reordered)."""
        rows = [(float(e[0]), float(e[1]), int(e[2])) for e in events]
        if not rows:
            return cls(np.zeros((0, 2)), np.zeros(0, dtype=int))
        data = np.asarray(rows)
        order = np.lexsort((data[:, 2], data[:, 0]))
        return cls(data[order, :2], data[order, 2].astype(int))


def available() -> bool:
    """Whether basic-pitch and its runtime (onnxruntime, mir_eval, resampy, pretty-midi) are installed."""
    import importlib.util

    return all(
        importlib.util.find_spec(m) is not None for m in ("basic_pitch", "onnxruntime", "mir_eval", "resampy", "pretty_midi")
    )


def check_available() -> None:
    if not available():
        raise UserError("note-level content scores need basic-pitch (and onnxruntime, mir_eval, resampy), not installed", INSTALL)


@functools.lru_cache(maxsize=1)
def _model() -> Any:
    """basic-pitch's ONNX model, loaded once a process. Its package warns at import about every backend it does not
    find (TensorFlow, CoreML, TFLite): silenced, since the ONNX one is the one used."""
    check_available()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        from basic_pitch import inference
    finally:
        logging.disable(previous)
    path = inference.ICASSP_2022_MODEL_PATH.parent / "nmp.onnx"
    if not path.is_file():
        raise UserError(f"basic-pitch's wheel lacks its ONNX model (looked at {path})", INSTALL)
    return inference.Model(path)


def transcribe(audio: np.ndarray, sample_rate: int) -> Notes:
    """The notes basic-pitch hears in `audio` (mono), with its own defaults (onset threshold 0.5, frame 0.3, notes of
    at least 128 ms, the melodia trick). The audio is windowed as basic-pitch's own `run_inference` does, from an
    array instead of a file."""
    import librosa

    model = _model()
    from basic_pitch import constants, note_creation
    from basic_pitch.inference import unwrap_output, window_audio_file

    rate = constants.AUDIO_SAMPLE_RATE
    signal = np.asarray(audio, dtype=np.float32)
    if sample_rate != rate:
        signal = librosa.resample(signal, orig_sr=sample_rate, target_sr=rate)
    overlapping_frames = 30
    overlap = overlapping_frames * constants.FFT_HOP
    hop = constants.AUDIO_N_SAMPLES - overlap
    padded = np.concatenate([np.zeros(overlap // 2, dtype=np.float32), signal])
    outputs: dict[str, list[np.ndarray]] = {"note": [], "onset": [], "contour": []}
    for window, _ in window_audio_file(padded, hop):
        for key, value in model.predict(window[None].astype(np.float32)).items():
            outputs[key].append(value)
    unwrapped = {k: unwrap_output(np.concatenate(v), len(signal), overlapping_frames) for k, v in outputs.items()}
    min_frames = int(np.round(127.70 / 1000 * (rate / constants.FFT_HOP)))
    _, events = note_creation.model_output_to_notes(
        unwrapped, onset_thresh=0.5, frame_thresh=0.3, min_note_len=min_frames, melodia_trick=True
    )
    return Notes.from_events(events)


def note_scores(reference: Notes, estimate: Notes, onset_tolerance: float = 0.05) -> dict[str, float]:
    """`note_precision`, `note_recall`, `note_f1` of `estimate` against `reference` (mir_eval, onsets only)."""
    import mir_eval

    if len(reference) == 0 or len(estimate) == 0:
        both_empty = float(len(reference) == len(estimate))
        return {"note_precision": both_empty, "note_recall": both_empty, "note_f1": both_empty}
    precision, recall, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
        reference.intervals,
        mir_eval.util.midi_to_hz(reference.pitches),
        estimate.intervals,
        mir_eval.util.midi_to_hz(estimate.pitches),
        onset_tolerance=onset_tolerance,
        offset_ratio=None,
    )
    return {"note_precision": float(precision), "note_recall": float(recall), "note_f1": float(f1)}


def piano_roll(notes: Notes, frames: int, frame_s: float = FRAME_S) -> np.ndarray:
    """`[frames, 128]` booleans: which MIDI pitches sound in each frame."""
    roll = np.zeros((frames, 128), dtype=bool)
    for (start, end), pitch in zip(notes.intervals, notes.pitches):
        first, last = int(round(start / frame_s)), max(int(round(end / frame_s)), int(round(start / frame_s)) + 1)
        roll[first:last, int(pitch)] = True
    return roll


def pitch_jaccard_distance(reference: Notes, estimate: Notes, seconds: float, frame_s: float = FRAME_S) -> float:
    """Mean over the `seconds`' frames of 1 - |both| / |either| (0 where neither has a pitch)."""
    frames = max(1, int(round(seconds / frame_s)))
    a, b = piano_roll(reference, frames, frame_s), piano_roll(estimate, frames, frame_s)
    union = (a | b).sum(axis=1)
    both = (a & b).sum(axis=1)
    distance = np.where(union > 0, 1.0 - both / np.maximum(union, 1), 0.0)
    return float(distance.mean())


def notes_kept(reference: Notes, output: np.ndarray, sample_rate: int) -> dict[str, float]:
    """The output transcribed and compared with the reference's notes: note P/R/F1 and the pitch Jaccard distance."""
    estimate = transcribe(output, sample_rate)
    return {
        **note_scores(reference, estimate),
        "pitch_jaccard_dist": pitch_jaccard_distance(reference, estimate, len(output) / sample_rate),
    }
