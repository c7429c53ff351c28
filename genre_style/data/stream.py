"""An audio file as a stream of (overlapping) windows, read a block at a time: memory stays flat on an hour-long file.

`load_mono` decodes a whole file (a one-hour 44.1-kHz stereo file is ~1.3 GB of float64 in librosa's hands); here
soundfile reads blocks of `block_seconds`, each is mixed down and resampled by one soxr stream (the resampler
`load_mono` uses, HQ, so a window's samples are the ones `load_mono` gives up to soxr's rounding) and cut into
windows `hop` samples apart. Kept free of torch, like the rest of `genre_style.data`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from genre_style.data.audio import load_mono, sndfile_reason
from genre_style.errors import AudioError

log = logging.getLogger(__name__)

NATIVE = (".wav", ".au", ".flac", ".ogg", ".mp3")  # what libsndfile (>= 1.1) decodes itself


def mono_blocks(path: str | Path, sample_rate: int, block_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """The file's samples, mono float32 at `sample_rate`, in blocks of about `block_seconds`; AudioError when the file
    cannot be used (unreadable, empty, NaN or infinite samples). Formats libsndfile does not read are decoded whole
    (`load_mono`)."""
    import soundfile as sf

    path = Path(path)
    try:
        source = sf.SoundFile(str(path))
    except Exception as exc:
        if path.suffix.lower() in NATIVE:  # libsndfile reads these: failing here means the file itself is broken
            raise AudioError(f"unreadable audio ({sndfile_reason(exc)})") from exc
        yield _decode_other(path, sample_rate, exc)
        return
    with source:
        native, frames = int(source.samplerate), max(1, int(block_seconds * source.samplerate))
        resampler = None
        if native != sample_rate:
            import soxr

            resampler = soxr.ResampleStream(native, sample_rate, 1, dtype="float32", quality="HQ")
        seen = 0
        while True:
            try:
                block = source.read(frames, dtype="float32", always_2d=True)
            except Exception as exc:
                raise AudioError(f"unreadable audio ({type(exc).__name__}: {exc})") from exc
            last = len(block) < frames
            mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1)
            if not np.isfinite(np.sum(mono, dtype=np.float64)):
                raise AudioError("audio holds NaN or infinite samples")
            seen += len(mono)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            if len(mono):
                yield np.ascontiguousarray(mono, dtype=np.float32)
            if last:
                break
        if not seen:
            raise AudioError("no audio samples")


def _decode_other(path: Path, sample_rate: int, sndfile_error: Exception) -> np.ndarray:
    """A file libsndfile cannot open, through librosa's other decoders, their warnings kept off the console: a text
    file is one clear reason, not librosa's five lines of warnings and "EOFError: "."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return load_mono(path, sample_rate)
        except AudioError:
            raise AudioError(
                f"not an audio file genre-style can decode ({sndfile_reason(sndfile_error)}): use wav, flac, mp3 or ogg"
            ) from None


def windows(
    path: str | Path,
    sample_rate: int,
    window: int,
    hop: int,
    batch: int = 64,
    max_windows: int | None = None,
    block_seconds: float = 30.0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(start sample of each window `[b]`, windows `[b, window]` float32) batches over the file, windows `hop` samples
    apart; a partial window at the end is dropped, and audio shorter than one window is padded with silence to one
    (with a warning), as `data.preprocessing.Preprocessing.clips` does."""
    buffer = np.zeros(0, dtype=np.float32)
    offset = 0  # the file's sample index of buffer[0]
    start = 0  # the next window's start
    done = 0
    limit = max_windows if max_windows is not None else np.iinfo(np.int64).max
    starts: list[int] = []
    pending: list[np.ndarray] = []
    for block in mono_blocks(path, sample_rate, block_seconds):
        buffer = np.concatenate([buffer, block]) if len(buffer) else block
        while done < limit and start + window <= offset + len(buffer):
            pending.append(buffer[start - offset : start - offset + window])
            starts.append(start)
            start, done = start + hop, done + 1
            if len(pending) == batch:
                yield np.asarray(starts), np.stack(pending)
                starts, pending = [], []
        if done >= limit:
            break
        keep = max(0, start - offset)  # nothing before the next window's start is needed again
        buffer, offset = buffer[keep:], offset + min(keep, len(buffer))
    if done == 0:
        total = offset + len(buffer)
        log.warning("%s is shorter than one clip (%.2f s): padded with silence", path, total / sample_rate)
        starts, pending = [0], [np.pad(buffer[:window], (0, window - min(window, len(buffer))))]
    if pending:
        yield np.asarray(starts), np.stack(pending)
