"""Named pretrained brackets: the off-the-shelf embedding shown beside the user's, on the same songs, clips and splits.

Beside `features=stats` and random weights (evaluation/brackets.py), `python -m genre_style.downstream` and the
end-of-training evaluation (`evaluation.downstream`) score these, by name (`--brackets`, `evaluation.pretrained_brackets`):

- `musicnn[:<weights>[:<layer>]]`: a frozen musicnn network (models/pretrained/musicnn.py); `musicnn` alone is
  `MSD_musicnn:penultimate`, the 200-d layer issue #39 measured best. Its outputs are cached per clip
  (models/pretrained/cache.py), so a second evaluation of the same folder costs only the probes. Missing package: a
  one-line note, the other embeddings are scored as ever.
- `hear:<module>[:<model file>]`: any module with the HEAR API (`load_model`, `get_scene_embeddings`; its
  `model.sample_rate`), by import path; e.g. `hear:genre_style.hear:outputs/runs/<run>/artifacts/checkpoints/best.ckpt`.

Each bracket cuts its own clips from the same songs, one for each of the model's clips, starting where the model's
does (`clip_starts`), at its own rate and length: musicnn its 3-s, 16 kHz patches (what it was trained on), a HEAR
module the model's clip duration at its sample rate. A bracket clip that would run past a song's end is moved back to
end there, so every embedding is scored on the same rows: the model's clips.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from genre_style.data import front_ends
from genre_style.data.audio import ClipSpec
from genre_style.data.clip_table import ClipTable
from genre_style.errors import UserError
from genre_style.evaluation.probes import ClipEmbeddings

log = logging.getLogger(__name__)
DEFAULT = ("musicnn",)  # shown beside every downstream evaluation where the package is installed
MUSICNN_DEFAULT = ("MSD_musicnn", "penultimate")
MUSICNN_CLIP = 47616  # musicnn's 187-frame training patch at 16 kHz (front_ends.MUSICNN)
HEAR_BATCH = 64


@dataclass(frozen=True)
class Bracket:
    """One named bracket: `kind` musicnn or hear, and its arguments (weights and layer; module and model file)."""

    kind: str
    args: tuple[str, ...]

    @property
    def name(self) -> str:
        """As shown in tables and metric keys: `musicnn MSD_musicnn penultimate`, `hear <module> [<model file's name>]`."""
        if self.kind == "musicnn":
            return " ".join((self.kind, *self.args[:2]))
        return " ".join(("hear", self.args[0], *(Path(f).name for f in self.args[1:2])))


def parse(text: str) -> Bracket:
    """`musicnn[:weights[:layer]]` or `hear:<module>[:<model file>]`; a UserError naming the forms otherwise."""
    kind, _, rest = str(text).strip().partition(":")
    if kind == "musicnn":
        from genre_style.models.pretrained.musicnn import LAYERS, WEIGHTS

        parts = [p for p in rest.split(":") if p] if rest else []
        weights = parts[0] if parts else MUSICNN_DEFAULT[0]
        if weights not in WEIGHTS or len(parts) > 2:
            raise UserError(f"unknown pretrained bracket {text!r}", f"use musicnn, or musicnn:<{'|'.join(WEIGHTS)}>[:<layer>]")
        layers = LAYERS[WEIGHTS[weights].kind]
        layer = parts[1] if len(parts) > 1 else ("penultimate" if "penultimate" in layers else "pool5")
        if layer not in layers:
            raise UserError(f"the bracket {text!r}: {weights} has no layer {layer}", f"use one of {', '.join(layers)}")
        return Bracket("musicnn", (weights, layer))
    if kind == "hear" and rest:
        module, _, model_file = rest.partition(":")
        return Bracket("hear", (module, model_file) if model_file else (module,))
    raise UserError(
        f"unknown pretrained bracket {text!r}",
        "use musicnn[:<weights>[:<layer>]] or hear:<module>[:<model file>] (e.g. hear:genre_style.hear:best.ckpt)",
    )


def parse_all(names: str | Sequence[str] | None) -> list[Bracket]:
    """A list (or comma-separated string) of bracket names; None, "", "none": no bracket."""
    if names is None:
        return []
    items = names.split(",") if isinstance(names, str) else list(names)
    items = [str(n).strip() for n in items if str(n).strip() and str(n).strip().lower() != "none"]
    brackets = [parse(n) for n in items]
    names = [b.name for b in brackets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:  # their figures would share one name and overwrite each other
        raise UserError(f"the pretrained bracket {repeated[0]!r} is named twice", "name each bracket once")
    return brackets


def missing(bracket: Bracket) -> str | None:
    """A one-line note where a bracket cannot be computed here (its package is not installed); None where it can."""
    if bracket.kind != "musicnn":
        return None
    from genre_style.models.pretrained.musicnn import checkpoint_prefix

    try:
        checkpoint_prefix(bracket.args[0])
    except UserError as exc:
        return f"the {bracket.name} bracket is left out: {exc.problem} ({exc.fix})"
    return None


def clip_spec(bracket: Bracket, model_spec: ClipSpec, sample_rate: int | None = None) -> ClipSpec:
    """The bracket's clips: its own rate, length and front-end (a HEAR module: the model's clip duration, as samples)."""
    rate = front_ends.MUSICNN_RATE if bracket.kind == "musicnn" else int(sample_rate or model_spec.sample_rate)
    scale = rate / model_spec.sample_rate
    segment = MUSICNN_CLIP if bracket.kind == "musicnn" else max(1, round(model_spec.segment_samples * scale))
    features = front_ends.MUSICNN if bracket.kind == "musicnn" else "waveform"
    hop = max(1, round(model_spec.hop_samples * scale))
    return replace(model_spec, sample_rate=rate, segment_samples=segment, hop_samples=hop, features=features)


def clip_starts(n_clips: int, n_samples: int, spec: ClipSpec, model_spec: ClipSpec) -> np.ndarray:
    """Where a song's `n_clips` bracket clips start, in samples at `spec.sample_rate`: at the model's clip starts (its
    hop in seconds), moved back where a longer bracket clip would run past the song's end (so every clip of the model
    has one, of real audio)."""
    starts = np.round(np.arange(n_clips) * model_spec.hop_samples * spec.sample_rate / model_spec.sample_rate)
    return np.clip(starts.astype(np.int64), 0, max(n_samples - spec.segment_samples, 0))


def song_clips(path: str | Path, n_clips: int, spec: ClipSpec, model_spec: ClipSpec) -> np.ndarray:
    """One song's bracket clips `[n_clips, spec.segment_samples]` (a song shorter than one clip: zero-padded)."""
    from genre_style.data.audio import load_mono

    signal = load_mono(path, spec.sample_rate)
    if len(signal) < spec.segment_samples:
        signal = np.pad(signal, (0, spec.segment_samples - len(signal)))
    starts = clip_starts(n_clips, len(signal), spec, model_spec)
    return signal[starts[:, None] + np.arange(spec.segment_samples)]


def _tracks(root: str | Path, table: ClipTable, kind: str | None = None) -> list[Any]:
    """The table's songs (their files), in its order; `kind`: the run's `data.source.kind` (None: the source that claims
    `root`), so a manifest or a plugin's source finds the same songs the model's clips came from."""
    from genre_style.data.corpus import discover_tracks

    by_id = {t.track_id: t for t in discover_tracks(root, table.genres, kind)}
    missing = [track_id for track_id in table.track_ids if track_id not in by_id]
    if missing:
        raise UserError(
            f"the bracket cannot find {len(missing)} of the model's songs under {root} (e.g. {missing[0]})",
            "evaluate on the data the model's clips came from (the same data.source.root and data.source.kind)",
        )
    return [by_id[track_id] for track_id in table.track_ids]


def _per_song_chunks(
    root: str | Path, table: ClipTable, spec: ClipSpec, model_spec: ClipSpec, songs: int = 8, kind: str | None = None
) -> Iterator[np.ndarray]:
    """The bracket's clips (through its front-end) for the table's rows, a few songs at a time: memory flat in the
    folder's size (20 of musicnn's 3-s patches a song are 3.6 MB of samples)."""
    counts = np.bincount(table.track_index, minlength=len(table.track_ids))
    tracks = _tracks(root, table, kind)
    for first in range(0, len(tracks), songs):
        clips = [song_clips(t.path, int(counts[i]), spec, model_spec) for i, t in enumerate(tracks[first : first + songs], first)]
        joined = np.concatenate(clips)
        yield spec.front_end.compute(joined, spec).reshape(len(joined), *spec.feature_shape)


def embed(
    bracket: Bracket,
    root: str | Path,
    table: ClipTable,
    table_key: str | None,
    model_spec: ClipSpec,
    cache_dir: str | Path | None,
    kind: str | None = None,
) -> np.ndarray:
    """The bracket's embedding of each of the model table's clips `[len(table), D]`, row for row (the table keeps a
    song's clips together, in order). musicnn's outputs are cached (models/pretrained/cache.py), keyed by the model
    table's clips (`table_key`), the bracket's front-end and the backbone: a second evaluation reads no audio."""
    if bracket.kind == "musicnn":
        import hashlib
        import json

        from genre_style.models.pretrained import cache
        from genre_style.models.pretrained.musicnn import MusicnnEncoder

        spec = clip_spec(bracket, model_spec)
        weights, layer = bracket.args
        encoder = MusicnnEncoder(
            spec.feature_shape, 1, weights=weights, layer=layer, cache_dir=str(cache_dir) if cache_dir else None
        )
        backbone = encoder.frozen_backbone()
        assert backbone is not None  # freeze=all
        key = None
        if table_key and cache_dir:
            digest = hashlib.sha256(json.dumps({"bracket": spec.as_dict(), "starts": "model-clips-clamped"}).encode())
            key = f"bracket-{table_key}-{digest.hexdigest()[:8]}"
        path = cache.cache_path(cache_dir, key, backbone) if key and cache_dir else None
        values, path, computed = cache.load_or_compute(
            path,
            (len(table), backbone.output_dim),
            lambda: np.concatenate(
                [cache.compute(backbone, x) for x in _per_song_chunks(root, table, spec, model_spec, kind=kind)]
            ),
        )
        log.info("%s: %s", bracket.name, f"{computed} clips computed" if computed else f"cached outputs reused ({path})")
        return values
    module, model = load_hear(bracket)
    spec = clip_spec(bracket, model_spec, int(model.sample_rate))
    return np.concatenate([hear_embeddings(module, model, x) for x in _per_song_chunks(root, table, spec, model_spec, kind=kind)])


def load_hear(bracket: Bracket) -> tuple[Any, Any]:
    """(the HEAR module, its model from `load_model`); a UserError naming what is missing."""
    name = bracket.args[0]
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise UserError(
            f"the bracket hear:{name} cannot be imported ({exc})", f"install the package that provides {name}"
        ) from None
    for attribute in ("load_model", "get_scene_embeddings"):
        if not callable(getattr(module, attribute, None)):
            raise UserError(
                f"{name} has no {attribute}: it is not a HEAR-API module",
                "name a module with load_model and get_scene_embeddings",
            )
    model = module.load_model(bracket.args[1]) if len(bracket.args) > 1 else module.load_model()
    if not getattr(model, "sample_rate", None):
        raise UserError(f"{name}.load_model() gave a model without sample_rate", "HEAR models say the rate they read")
    return module, model


def hear_embeddings(module: Any, model: Any, clips: np.ndarray) -> np.ndarray:
    """`get_scene_embeddings` of each clip `[n, D]`, `HEAR_BATCH` clips at a time, on the model's device."""
    import torch

    parameters = getattr(model, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    device = first.device if first is not None else torch.device("cpu")
    chunks = []
    with torch.no_grad():
        for start in range(0, len(clips), HEAR_BATCH):
            audio = torch.as_tensor(np.ascontiguousarray(clips[start : start + HEAR_BATCH]), dtype=torch.float32, device=device)
            chunks.append(module.get_scene_embeddings(audio, model).detach().float().cpu().numpy())
    return np.concatenate(chunks)


def bracket_embeddings(
    brackets: Sequence[Bracket],
    root: str | Path,
    table: ClipTable,
    table_key: str | None,
    model_spec: ClipSpec,
    cache_dir: str | Path | None,
    kind: str | None = None,
) -> tuple[list[tuple[str, ClipTable, np.ndarray]], list[str]]:
    """([(name, the model's clip table, the bracket's embedding of its rows)] of each bracket that can be computed
    here, [one-line notes for those left out]). `table` is the model's clips of `root` (`table_key`: its clip cache's
    key, None without a cache; `kind`: the kind of source that read `root`, None: the one that claims it)."""
    done, notes = [], []
    for bracket in brackets:
        note = missing(bracket)
        if note:
            log.info("%s", note)
            notes.append(note)
            continue
        done.append((bracket.name, table, embed(bracket, root, table, table_key, model_spec, cache_dir, kind)))
    return done, notes


def aligned(
    embeddings: list[ClipEmbeddings], table: ClipTable, others: Sequence[tuple[str, ClipTable, np.ndarray]]
) -> list[ClipEmbeddings]:
    """The model-side embeddings (on `table`'s clips) followed by each bracket's, on the same rows."""
    out = list(embeddings)
    for name, other, values in others:
        if other.track_ids != table.track_ids or not np.array_equal(other.track_index, table.track_index):
            raise RuntimeError(f"the {name} bracket did not get the same clips as the model")  # same files, same cuts
        out.append(ClipEmbeddings(name, values, table.labels, table.track_index))
    return out
