"""Transfers over many content/style pairs, every method and bracket on the same pairs, scored by the judges:
a table of flip rate, target probability and content correlations with 95 % intervals over pairs, and paired
differences against the brackets (benchmarks/bench_transfer.py drives it)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from genre_style.errors import UserError
from genre_style.evaluation.stats import Summary, paired_difference, percent_cell, summarize
from genre_style.inference import Embedder
from genre_style.style_transfer import methods, notes, scores, sources

# What a row of the table is: a name, the method (or bracket) and its settings.
DEFAULT_ENTRIES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("content (inversion, content-phase)", "inversion", {}),
    ("content (inversion, griffin-lim)", "inversion", {"resynthesis": "griffin-lim"}),
    ("equalise (baseline)", "equalise", {}),
    ("style song", "style", {}),
    ("latent, strength 1", "latent", {"strength": 1.0, "equalise": 0.0}),
    ("latent, strength 2", "latent", {"strength": 2.0, "equalise": 0.0}),
    ("latent, strength 3", "latent", {"strength": 3.0, "equalise": 0.0}),
    ("latent, guided by the model", "latent", {"strength": None, "equalise": 0.0}),
    ("latent, guided, equalise 0.5 (the default)", "latent", {"strength": None, "equalise": 0.5}),
    ("features", "features", {"steps": 100}),
)


@dataclass(frozen=True)
class Pair:
    content: Path
    content_genre: str
    style: Path
    style_genre: str

    @property
    def name(self) -> str:
        return f"{self.content.stem}-to-{self.style.stem}"


def pairs_from(songs: Sequence[tuple[Path, str]], n_pairs: int, seed: int = 0) -> list[Pair]:
    """Up to `n_pairs` content/style pairs of different genres: each song in turn as content (shuffled), its style a
    random song of each other genre in turn, so every content meets every other genre before any repeats."""
    rng = np.random.default_rng(seed)
    by_genre: dict[str, list[Path]] = {}
    for path, genre in songs:
        by_genre.setdefault(genre, []).append(Path(path))
    genres = sorted(by_genre)
    if len(genres) < 2:
        raise ValueError("pairs of different genres need songs of two genres or more")
    order = [songs[i] for i in rng.permutation(len(songs))]
    pairs: list[Pair] = []
    for round_ in range(len(genres) - 1):
        for path, genre in order:
            others = [g for g in genres if g != genre]
            target = others[(round_ + genres.index(genre)) % len(others)]
            candidates = by_genre[target]
            pairs.append(Pair(Path(path), genre, candidates[int(rng.integers(len(candidates)))], target))
            if len(pairs) == n_pairs:
                return pairs
    return pairs


@dataclass
class Results:
    """Per entry, per measure: the value on each pair (pair name -> value)."""

    values: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def add(self, entry: str, pair: str, measures: dict[str, float]) -> None:
        for measure, value in measures.items():
            self.values.setdefault(entry, {}).setdefault(measure, {})[pair] = value

    def summary(self, entry: str, measure: str) -> Summary:
        return summarize(list(self.values[entry][measure].values()))

    def difference(self, a: str, b: str, measure: str) -> Summary | None:
        return paired_difference(self.values[a][measure], self.values[b][measure])

    def measures(self) -> list[str]:
        first = next(iter(self.values.values()))
        return list(first)

    def markdown(self, against: Sequence[str] = (), differences: Sequence[tuple[str, str]] = ()) -> str:
        """One row per entry (mean [95 % interval] over pairs, in %), then each method minus each of `against`, then
        each (a, b) of `differences` as a - b (e.g. one method against another)."""
        measures = self.measures()
        lines = ["| entry | " + " | ".join(measures) + " |", "|" + "---|" * (len(measures) + 1)]
        for entry in self.values:
            lines.append(f"| {entry} | " + " | ".join(percent_cell(self.summary(entry, m)) for m in measures) + " |")
        rows = [(e, b) for b in against for e in self.values if e not in against and not e.startswith("style")]
        for entry, other in [*rows, *differences]:
            cells = [self.difference(entry, other, m) for m in measures]
            lines.append(f"| {entry} - {other} | " + " | ".join("" if c is None else percent_cell(c, True) for c in cells) + " |")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(self.values)


def run_pairs(
    embedder: Embedder,
    judges: Sequence[scores.Judge],
    pairs: Sequence[Pair],
    out_dir: Path,
    seconds: float = 8.0,
    entries: Sequence[tuple[str, str, dict[str, Any]]] = DEFAULT_ENTRIES,
    style_clips: int = 20,
    progress: bool = True,
    note_content: bool = False,
    models: Mapping[str, Embedder] | None = None,
) -> Results:
    """Every entry on every pair: the output written to `out_dir/<entry>/<pair>.wav` and read back by each judge;
    `note_content`: also the notes kept (the content transcribed once a pair, each output against it). `models`: the
    entries made by another model than `embedder` (entry name -> model; e.g. `convert`'s style encoder, trained on
    other music), fed the same content and style audio, so they must read it at the same rate and clip length."""
    import soundfile as sf
    from tqdm.auto import tqdm

    spec = embedder.spec
    models = dict(models or {})
    for entry, model in models.items():
        if (model.spec.sample_rate, model.spec.segment_samples) != (spec.sample_rate, spec.segment_samples):
            raise UserError(
                f"the model of {entry!r} reads {model.spec.segment_samples}-sample clips at {model.spec.sample_rate} Hz, "
                f"the transfer model {spec.segment_samples} at {spec.sample_rate} Hz",
                "give that entry a model of the transfer model's sample rate and clip length",
            )
    results = Results()
    for pair in tqdm(pairs, desc="transfer pairs", unit="pair", disable=not progress):
        content = sources.load_audio(pair.content, spec, seconds)
        style = replace(sources.load_style(str(pair.style), spec, None, style_clips), genre=pair.style_genre)
        content_notes = notes.transcribe(content, spec.sample_rate) if note_content else None
        for entry, method, settings in entries:
            output = methods.transfer(models.get(entry, embedder), content, style, method, **settings)
            folder = out_dir / "".join(c if c.isalnum() else "_" for c in entry)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{pair.name}.wav"
            sf.write(path, output, spec.sample_rate)
            measures: dict[str, float] = {}
            for judge in judges:
                measures.update({f"{judge.name} {k}": v for k, v in judge.score(path, pair.style_genre).items()})
            kept = output if method != "style" else output[: len(content)]
            kept = np.pad(kept, (0, max(0, len(content) - len(kept))))
            measures.update(scores.content_kept(content, kept, spec.sample_rate, content_notes))
            results.add(entry, pair.name, measures)
    return results
