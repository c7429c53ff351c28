"""Where a transfer's content and style come from: an audio file, or (for the style) a genre's songs in a labelled
GTZAN-layout folder, cut into the model's clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genre_style.data.audio import ClipSpec, load_mono
from genre_style.data.corpus import available_genres, discover_tracks
from genre_style.errors import AudioError, UserError
from genre_style.style_transfer import inversion
from genre_style.style_transfer.methods import Style

STYLE_SONGS = 10  # a genre's style: the clips of its first songs


def load_audio(path: str | Path, spec: ClipSpec, seconds: float | None = None, what: str = "content") -> np.ndarray:
    """A file's samples at the model's rate (the first `seconds` if given); a UserError naming a file that is not audio."""
    try:
        signal = load_mono(path, spec.sample_rate)
    except AudioError as exc:
        raise UserError(f"the {what} {path} is not usable audio ({exc})", "give a WAV, FLAC, MP3 or OGG file") from None
    return signal[: int(seconds * spec.sample_rate)] if seconds else signal


def load_style(style: str, spec: ClipSpec, root: str | Path | None, max_clips: int = 40) -> Style:
    """`style` as an audio file, or as a genre name whose songs in `root` (GTZAN layout) give the clips: every
    other half-clip window (so the clips do not overlap) of its first STYLE_SONGS songs, at most `max_clips`."""
    if Path(style).is_file():
        clips = inversion.song_clips(load_audio(style, spec, what="style"), spec, name=f"the style {style}")[::2]
        return Style(clips[:max_clips], None, Path(style).stem)
    if root is None:
        raise UserError(
            f"style {style!r} is no audio file, and no folder was given to find a genre of that name in",
            "give a style audio file, or a genre name with --style-root /path/to/gtzan",
        )
    genres = available_genres(root)
    if style not in genres:
        raise UserError(
            f"style {style!r} is neither an audio file nor a genre under {root} (genres: {', '.join(genres)})",
            "give a style audio file, or one of those genre names",
        )
    chunks, total = [], 0
    for track in discover_tracks(root, [style])[:STYLE_SONGS]:
        try:
            signal = load_mono(track.path, spec.sample_rate)
        except AudioError:
            continue
        if len(signal) >= spec.segment_samples:
            chunks.append(inversion.song_clips(signal, spec)[::2])
            total += len(chunks[-1])
        if total >= max_clips:
            break
    if not chunks:
        raise UserError(f"no song of genre {style!r} under {root} is usable audio", "check the genre's files decode")
    return Style(np.concatenate(chunks)[:max_clips], style, f"genre:{style}")


def training_root(model: str | Path) -> str | None:
    """The data root a checkpoint's run was trained on (its `config.yaml` beside the checkpoints folder), if found."""
    config = Path(model).resolve().parent.parent / "config.yaml"
    if not Path(model).is_file() or not config.is_file():
        return None
    from omegaconf import OmegaConf

    root = OmegaConf.select(OmegaConf.load(config), "data.source.root", throw_on_resolution_failure=False)
    return str(root) if root and Path(str(root)).is_dir() else None
