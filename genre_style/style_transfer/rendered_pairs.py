"""Transfers scored against the truth: pairs from a rendered corpus (`data/rendered.py`), where the content's notes
played in the target style exist, so every method and baseline can be measured the way Cifka et al. 2021 measure:

- `lsd`: log-spectral distance to the true target (dB): both signals scaled to unit power, log-mel spectrograms
  (librosa's 128 bands), the RMS difference over bands per frame, averaged over frames. Lower is closer.
- `style_dist`: the cosine distance between a style judge's song embeddings of the output and of the true target. The
  judge is another trained model (never the one that transfers), trained on other pieces; lower is closer in style.
- the content kept (`scores.content_kept`): chroma and onset correlations with the content and, where basic-pitch is
  installed, the notes kept (note F1 and the pitch Jaccard distance against the content's transcription).

A pair: a test piece in one style (content), another test piece in the target style (the style reference, as a user
would give one) and the content's piece in the target style (the true target, never shown to a method). Target
styles cycle through every style, held-out ones included (no model trained on them). Entries: the brackets copy
content and copy style (Cifka's trivial baselines), the true target itself, the equaliser, and the methods.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from genre_style.data.rendered import RenderedCorpus
from genre_style.errors import UserError
from genre_style.evaluation.stats import Summary, paired_difference, summarize
from genre_style.inference import Embedder
from genre_style.style_transfer import methods, notes, scores, sources

# A row of the table: its name, the method (or bracket) and its settings. `content`, `target`: the audio as it is.
ENTRIES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("copy content", "content", {}),
    ("copy style", "style", {}),
    ("true target", "target", {}),
    ("equalise (baseline)", "equalise", {}),
    ("features (Ulyanov & Lebedev)", "features", {"steps": 100}),
    ("latent, strength 2", "latent", {"strength": 2.0, "equalise": 0.0}),
    ("latent, guided, equalise 0.5 (the default)", "latent", {"strength": None, "equalise": 0.5}),
)
BRACKETS = ("copy content", "equalise (baseline)", "features (Ulyanov & Lebedev)")
LOWER_IS_BETTER = ("lsd", "style_dist", "pitch_jaccard_dist")
PLAIN = {"lsd": ".2f", "style_dist": ".3f"}  # other measures are shown in percent


@dataclass(frozen=True)
class RenderedPair:
    piece: str
    content_style: str
    target_style: str
    style_piece: str
    corpus: RenderedCorpus

    @property
    def name(self) -> str:
        return f"{self.piece}:{self.content_style}-to-{self.target_style}"

    @property
    def content(self) -> Path:
        return self.corpus.path(self.content_style, self.piece)

    @property
    def style(self) -> Path:
        return self.corpus.path(self.target_style, self.style_piece)

    @property
    def target(self) -> Path:
        return self.corpus.path(self.target_style, self.piece)

    @property
    def held_out(self) -> bool:
        """Whether the target style is one no model was trained on."""
        return self.target_style in self.corpus.held_out


def rendered_pairs(corpus: RenderedCorpus, split: str = "test", n_pairs: int = 32, seed: int = 0) -> list[RenderedPair]:
    """`n_pairs` pairs of the split's pieces: the target style cycles through every style, the pieces through the
    split (shuffled); the content style is another style at random, the style reference another piece at random."""
    pieces = corpus.split_pieces(split)
    if len(pieces) < 2:
        raise UserError(
            f"the {split} split of the rendered corpus has {len(pieces)} piece(s): a style reference needs another piece",
            "use --split train, val or test of a corpus with at least two pieces in it",
        )
    if n_pairs < 1:
        raise UserError(f"--pairs {n_pairs}: nothing to score", "give --pairs 1 or more")
    rng = np.random.default_rng(seed)
    order = [pieces[i] for i in rng.permutation(len(pieces))]
    styles = list(corpus.styles)
    pairs = []
    for i in range(n_pairs):
        target = styles[i % len(styles)]
        piece = order[(i // len(styles)) % len(order)]
        content = str(rng.choice([s for s in styles if s != target]))
        other = str(rng.choice([p for p in pieces if p != piece]))
        pairs.append(RenderedPair(piece, content, target, other, corpus))
    return pairs


def output_path(out_dir: Path, entry: str, pair: str) -> Path:
    """Where an entry's output for a pair is written (and the listening page looks for it)."""
    return out_dir / "".join(c if c.isalnum() else "_" for c in entry) / f"{pair.replace(':', '__')}.wav"


def log_spectral_distance(output: np.ndarray, target: np.ndarray, sample_rate: int) -> float:
    """Cifka et al.'s LSD in dB: unit-power signals, log-mel spectrograms, RMS over bands per frame, mean over frames."""
    import librosa

    def spectrogram(signal: np.ndarray) -> np.ndarray:
        signal = signal / (np.sqrt(np.mean(np.square(signal))) + 1e-8)
        return librosa.power_to_db(librosa.feature.melspectrogram(y=signal.astype(np.float32), sr=sample_rate))

    length = min(len(output), len(target))
    a, b = spectrogram(output[:length]), spectrogram(target[:length])
    return float(np.mean(np.sqrt(np.mean(np.square(a - b), axis=0))))


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(1.0 - np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


@dataclass
class Table:
    """Per entry, per measure: the value on each pair (pair name -> value); which pairs have a held-out target."""

    values: dict[str, dict[str, dict[str, float]]]
    held_out: set[str]

    def subset(self, held_out: bool | None) -> Table:
        """The pairs whose target style is held out (True), trained on (False), or all (None)."""
        if held_out is None:
            return self
        keep = {p for e in self.values.values() for m in e.values() for p in m if (p in self.held_out) == held_out}
        values = {e: {m: {p: v for p, v in vs.items() if p in keep} for m, vs in ms.items()} for e, ms in self.values.items()}
        return Table(values, self.held_out & keep)

    def n_pairs(self) -> int:
        first = next(iter(next(iter(self.values.values())).values()))
        return len(first)

    def markdown(self, against: Sequence[str] = BRACKETS) -> str:
        """One row per entry (mean [95 % t-interval] over pairs), then each method minus each of `against`, paired."""
        measures = list(next(iter(self.values.values())))
        head = [f"{m} ({'lower' if m in LOWER_IS_BETTER else 'higher'} better)" for m in measures]
        lines = ["| entry | " + " | ".join(head) + " |", "|" + "---|" * (len(measures) + 1)]
        for entry, by_measure in self.values.items():
            cells = [format_cell(m, summarize(list(by_measure[m].values()))) for m in measures]
            lines.append(f"| {entry} | " + " | ".join(cells) + " |")
        for bracket in against:
            if bracket not in self.values:
                continue
            for entry in self.values:
                if entry == bracket or entry in ("copy style", "true target") or entry in against[: against.index(bracket)]:
                    continue
                differences = [paired_difference(self.values[entry][m], self.values[bracket][m]) for m in measures]
                row = " | ".join("" if d is None else format_cell(m, d, signed=True) for m, d in zip(measures, differences))
                lines.append(f"| {entry} - {bracket} | {row} |")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"values": self.values, "held_out": sorted(self.held_out)})

    @classmethod
    def from_json(cls, text: str) -> Table:
        data = json.loads(text)
        return cls(data["values"], set(data["held_out"]))


def format_cell(measure: str, summary: Summary, signed: bool = False) -> str:
    scale, spec = (1.0, PLAIN[measure]) if measure in PLAIN else (100.0, ".1f")
    spec = ("+" if signed else "") + spec
    if summary.n == 1 or summary.sd != summary.sd:
        return f"{scale * summary.mean:{spec}}"
    return f"{scale * summary.mean:{spec}} [{scale * summary.low:{spec}}, {scale * summary.high:{spec}}]"


def run_rendered_pairs(
    embedder: Embedder,
    judge: Embedder,
    pairs: Sequence[RenderedPair],
    out_dir: Path,
    entries: Sequence[tuple[str, str, dict[str, Any]]] = ENTRIES,
    style_clips: int = 20,
    note_content: bool = True,
    progress: bool = True,
    reuse: bool = False,
) -> Table:
    """Every entry on every pair, written to `out_dir/<entry>/<pair>.wav` (`output_path`) and scored against the
    pair's true target (LSD, the judge's style distance) and its content (correlations, notes kept). What is scored is
    the file as written (16-bit), what a listener hears. `reuse`: an output already there is scored, not made again
    (a run cut short resumes; more pairs add only their own work)."""
    import soundfile as sf
    from tqdm.auto import tqdm

    spec = embedder.spec
    if judge.spec.sample_rate != spec.sample_rate:
        raise UserError(
            f"the judge reads audio at {judge.spec.sample_rate} Hz, the transfer model at {spec.sample_rate} Hz",
            "judge with a model trained on the same data.clips.sample_rate",
        )
    values: dict[str, dict[str, dict[str, float]]] = {}
    for pair in tqdm(pairs, desc="rendered pairs", unit="pair", disable=not progress):
        content = sources.load_audio(pair.content, spec)
        target = sources.load_audio(pair.target, spec, what="true target")
        style = sources.load_style(str(pair.style), spec, None, style_clips)
        style = methods.Style(style.clips, pair.target_style, style.name)  # the style's name is what a user would know
        target_embedding = judge.embed_audio(target).embedding
        content_notes = notes.transcribe(content, spec.sample_rate) if note_content else None
        for entry, method, settings in entries:
            path = output_path(out_dir, entry, pair.name)
            if not (reuse and path.is_file()):
                if method == "content":
                    output = content
                elif method == "target":
                    output = target
                else:
                    output = methods.transfer(embedder, content, style, method, **settings)
                output = np.pad(output, (0, max(0, len(content) - len(output))))[: len(content)].astype(np.float32)
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".part.wav")  # a run cut short leaves no half file for `reuse` to take
                sf.write(partial, output, spec.sample_rate, subtype="PCM_16")
                partial.replace(path)
            output = sources.load_audio(path, spec, what=f"{entry}'s output")
            measures = {
                "lsd": log_spectral_distance(output, target, spec.sample_rate),
                "style_dist": cosine_distance(judge.embed_audio(output).embedding, target_embedding),
                **scores.content_kept(content, output, spec.sample_rate, content_notes),
            }
            for measure, value in measures.items():
                values.setdefault(entry, {}).setdefault(measure, {})[pair.name] = value
    return Table(values, {p.name for p in pairs if p.held_out})
