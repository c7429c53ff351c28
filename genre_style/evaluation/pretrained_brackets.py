"""Named pretrained brackets: the off-the-shelf embedding shown beside the user's, on the same songs, clips and splits.

Beside `features=stats` and random weights (evaluation/brackets.py), `python -m genre_style.downstream` and the
end-of-training evaluation (`evaluation.downstream`) score these, by name (`--brackets`, `evaluation.pretrained_brackets`):

- `musicnn[:<weights>[:<layer>]]`: a frozen musicnn network (models/pretrained/musicnn.py); `musicnn` alone is
  `MSD_musicnn:penultimate`, the 200-d layer issue #39 measured best. Its outputs are cached per clip
  (models/pretrained/cache.py), so a second evaluation of the same folder costs only the probes. Missing package: a
  one-line note, the other embeddings are scored as ever.
- `hear:<module>[:<model file>]`: any module with the HEAR API (`load_model`, `get_scene_embeddings`; its
  `model.sample_rate`), by import path; e.g. `hear:genre_style.hear:outputs/runs/<run>/artifacts/checkpoints/best.ckpt`.

Each bracket cuts its own clips at the model's clip starts (the same hop in seconds, the same number per song), at its
own rate and length: musicnn its 3-s, 16 kHz patches (what it was trained on), a HEAR module the model's clip
duration at its sample rate. Clip i of a song starts at the same time for every embedding; a song too short for a
bracket's longer clip keeps the clips every embedding has (`common_clips`), so all are scored on the same rows.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from genre_style.data import front_ends
from genre_style.data.audio import ClipSpec
from genre_style.data.clip_table import ClipTable
from genre_style.errors import UserError
from genre_style.evaluation.downstream import ClipEmbeddings

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
        """As shown in tables and metric keys: `musicnn MSD_musicnn penultimate`, `hear <module>`."""
        return " ".join((self.kind, *self.args[:2])) if self.kind == "musicnn" else f"hear {self.args[0]}"


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
    return [parse(n) for n in items]


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
    """The bracket's clips: its own rate and length, starting where the model's do (the model's hop in seconds)."""
    rate = front_ends.MUSICNN_RATE if bracket.kind == "musicnn" else int(sample_rate or model_spec.sample_rate)
    scale = rate / model_spec.sample_rate
    segment = MUSICNN_CLIP if bracket.kind == "musicnn" else max(1, round(model_spec.segment_samples * scale))
    features = front_ends.MUSICNN if bracket.kind == "musicnn" else "waveform"
    return replace(
        model_spec,
        sample_rate=rate,
        segment_samples=segment,
        hop_samples=max(1, round(model_spec.hop_samples * scale)),
        features=features,
    )


def common_clips(tables: Sequence[ClipTable]) -> list[np.ndarray]:
    """Per table, the rows of the clips every table has (song and place in the song), in the first table's order.
    The tables must hold the same songs (the same files, the same genres)."""
    from genre_style.data.datamodule import clip_positions

    first = tables[0]
    for table in tables[1:]:
        if table.track_ids != first.track_ids:
            raise RuntimeError("a bracket did not get the same songs as the model")  # same files, same genres
    counts = np.min([np.bincount(t.track_index, minlength=len(first.track_ids)) for t in tables], axis=0)
    return [np.flatnonzero(clip_positions(t.track_index) < counts[t.track_index]) for t in tables]


def embed(
    bracket: Bracket,
    root: str | Path,
    genres: Sequence[str],
    model_spec: ClipSpec,
    cache_dir: str | Path | None,
    workers: int | None = None,
    progress: bool = False,
) -> tuple[ClipTable, np.ndarray]:
    """(the bracket's clip table, its embedding of every clip `[n, D]`) on `root`'s songs of `genres`."""
    from genre_style.evaluation.brackets import labelled_table

    if bracket.kind == "musicnn":
        from genre_style.models.pretrained import cache
        from genre_style.models.pretrained.musicnn import MusicnnEncoder

        spec = clip_spec(bracket, model_spec)
        table, key = labelled_table(root, genres, spec, cache_dir, workers, progress)
        weights, layer = bracket.args
        encoder = MusicnnEncoder(
            spec.feature_shape, 1, weights=weights, layer=layer, cache_dir=str(cache_dir) if cache_dir else None
        )
        backbone = encoder.frozen_backbone()
        assert backbone is not None  # freeze=all
        clips = table.features.reshape(len(table), *spec.feature_shape)
        values, path, computed = cache.features(backbone, clips, key, cache_dir)
        log.info("%s: %s", bracket.name, f"{computed} clips computed" if computed else f"cached outputs reused ({path})")
        return table, values
    module, model = load_hear(bracket)
    spec = clip_spec(bracket, model_spec, int(model.sample_rate))
    table, _ = labelled_table(root, genres, spec, cache_dir, workers, progress)
    return table, hear_embeddings(module, model, table.features.reshape(len(table), -1))


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
    genres: Sequence[str],
    model_spec: ClipSpec,
    cache_dir: str | Path | None,
    workers: int | None = None,
    progress: bool = False,
) -> tuple[list[tuple[str, ClipTable, np.ndarray]], list[str]]:
    """([(name, table, embedding)] of each bracket that can be computed here, [one-line notes for those left out])."""
    done, notes = [], []
    for bracket in brackets:
        note = missing(bracket)
        if note:
            log.info("%s", note)
            notes.append(note)
            continue
        table, values = embed(bracket, root, genres, model_spec, cache_dir, workers, progress)
        done.append((bracket.name, table, values))
    return done, notes


def aligned(
    embeddings: list[ClipEmbeddings], table: ClipTable, others: Sequence[tuple[str, ClipTable, np.ndarray]]
) -> list[ClipEmbeddings]:
    """The model-side embeddings (on `table`'s clips) and each bracket's, restricted to the clips all of them have."""
    if not others:
        return embeddings
    rows = common_clips([table, *(t for _, t, _ in others)])
    keep = rows[0]
    if len(keep) < len(table):
        log.info(
            "%d of %d clips are in every bracket (songs too short for a bracket's clip): scored on those", len(keep), len(table)
        )
    out = [ClipEmbeddings(e.name, e.x[keep], e.labels[keep], e.tracks[keep]) for e in embeddings]
    for (name, other, values), idx in zip(others, rows[1:]):
        out.append(ClipEmbeddings(name, values[idx], other.labels[idx], other.track_index[idx]))
    return out
