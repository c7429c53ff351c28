"""A paired corpus: the same notes rendered in several styles (instrument sets), so a transfer has a true target.

Pieces come from music21's bundled corpus (Bach's four-part chorales: freely distributable, in the wheel) or from MIDI
files a user passes; each is rendered by TinySoundFont with the General MIDI SoundFont that pretty-midi's wheel ships
(TimGM6mb.sf2, GPL-2, docs/style-transfer.md) into every style: an ensemble of GM programs, one per voice, and a
room. The same notes, velocities and times in every style: only the instruments (and the room) change.

Pieces are split (train/val/test) by a seeded shuffle; `held_out` styles are rendered for val and test pieces only
and their programs may be used by no training style, so test pairs can use pieces and instruments never trained on.
Written once under `root/<settings key>/` as `<style>/<style>.<piece>.wav` (GTZAN's layout) plus a manifest of the
training styles with each piece's split (`data.split.mode=manifest`); a file already there is kept, so a corpus grows
without rendering again. `RenderedDataModule` (`data=rendered`) renders in `prepare_data` and trains on the manifest.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import tempfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from genre_style.errors import UserError

log = logging.getLogger(__name__)

RENDER_VERSION = 1  # part of the settings key: bump when the rendering of the same notes changes
INSTALL = "pip install 'genre-style[transfer]' && pip install --no-deps tinysoundfont==0.3.7 basic-pitch==0.4.0"
SOUNDFONT = "TimGM6mb.sf2"  # in pretty-midi's wheel: GPL-2, Tim Brechbill (Debian: timgm6mb-soundfont)
MIDI_SUFFIXES = (".mid", ".midi")
SPLITS = ("train", "val", "test")
VELOCITY = 80  # chorales carry no dynamics; MIDI files keep their own


@dataclass(frozen=True)
class Ensemble:
    """A style: General MIDI programs (0-127) for the voices from top to bottom (a piece with more or fewer voices
    spreads them over these), and a room: reverberation time in seconds (0: dry)."""

    programs: tuple[int, ...]
    reverb_s: float = 0.0


# Training styles share no program with the held-out ones (`check_styles`), so a held-out style's instruments are
# unheard in training. TimGM6mb has every program named here (tests/unit/data/test_rendered.py renders each).
ENSEMBLES: dict[str, Ensemble] = {
    "piano": Ensemble((0,), 0.4),
    "strings": Ensemble((40, 40, 41, 42), 0.8),  # violin, violin, viola, cello
    "brass": Ensemble((56, 60, 57, 58), 0.6),  # trumpet, horn, trombone, tuba
    "woodwinds": Ensemble((73, 68, 71, 70)),  # flute, oboe, clarinet, bassoon
    "organ": Ensemble((19,), 1.5),  # church organ in a church
    "guitars": Ensemble((24, 25, 24, 32)),  # nylon, steel, nylon, acoustic bass
    "saxes": Ensemble((64, 65, 66, 67), 0.5),  # soprano, alto, tenor, baritone
    "mallets": Ensemble((11, 12, 11, 12), 0.3),  # vibraphone, marimba
    "synth": Ensemble((80, 81, 89, 38)),  # square lead, saw lead, warm pad, synth bass
}


@dataclass(frozen=True)
class RenderSpec:
    """What to render. `chorales`: how many of music21's four-part Bach chorales (sorted by BWV file name); `midi`:
    MIDI files or folders of them; `styles`: ENSEMBLES names, of which `held_out` are never trained on; each piece's
    first `seconds` at `tempo` quarter notes a minute (MIDI files keep their own timing)."""

    chorales: int = 40
    midi: tuple[str, ...] = ()
    styles: tuple[str, ...] = ("piano", "strings", "brass", "woodwinds", "organ", "guitars", "saxes", "mallets")
    held_out: tuple[str, ...] = ("saxes", "mallets")
    seconds: float = 15.0
    tempo: float = 100.0
    sample_rate: int = 22050
    split_sizes: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seed: int = 0
    version: int = field(default=RENDER_VERSION)

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> RenderSpec:
        values = dict(config or {})
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise UserError(f"data.rendered has no setting(s) {unknown}", f"use {sorted(cls.__dataclass_fields__)}")
        for key in ("midi", "styles", "held_out", "split_sizes"):
            if key in values:
                value = values[key]
                values[key] = (value,) if isinstance(value, str) else tuple(value or ())
        for key in ("seconds", "tempo", "split_sizes"):  # `seconds=15` names the folder `seconds: 15.0` does
            if key in values:
                try:
                    value = values[key]
                    values[key] = tuple(float(v) for v in value) if key == "split_sizes" else float(value)
                except (TypeError, ValueError):
                    raise UserError(f"data.rendered.{key}={values[key]!r} is not a number", "e.g. seconds=15") from None
        return cls(**values)

    @classmethod
    def from_overrides(cls, items: Sequence[str]) -> RenderSpec:
        """From `KEY=VALUE` strings (a command line's `--rendered chorales=20`), read as `data.rendered.KEY=VALUE` is
        read in training (YAML values: `styles=[piano,organ]`): the tools that reuse a corpus build it as training did."""
        import yaml

        values: dict[str, Any] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UserError(f"--rendered {item}: expected KEY=VALUE", "e.g. --rendered chorales=20 (a data.rendered setting)")
            values[key.strip()] = yaml.safe_load(value)
        return cls.from_config(values)

    def settings_key(self) -> str:
        """What changes a rendering of the same notes (not which pieces or styles): the folder files are kept in."""
        settings = {"seconds": self.seconds, "tempo": self.tempo, "sample_rate": self.sample_rate, "version": self.version}
        return "sr{}-{}s-{}".format(self.sample_rate, f"{self.seconds:g}", _digest(settings)[:8])

    def list_key(self) -> str:
        """Which pieces, styles and split: names the manifest and the corpus description."""
        return _digest(
            {k: v for k, v in asdict(self).items() if k in ("chorales", "midi", "styles", "held_out", "split_sizes", "seed")}
        )[:10]


def _digest(value: Any) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=list).encode()).hexdigest()


def check_installed() -> None:
    """A one-line error naming the install command if the renderer's packages are missing."""
    missing = [name for name in ("music21", "pretty_midi", "tinysoundfont") if _missing(name)]
    if missing:
        raise UserError(f"data=rendered needs {', '.join(missing)}, not installed", INSTALL)


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def soundfont_path() -> Path:
    """The General MIDI SoundFont in pretty-midi's install."""
    check_installed()
    import importlib.resources

    path = Path(str(importlib.resources.files("pretty_midi"))) / SOUNDFONT
    if not path.is_file():
        raise UserError(f"pretty-midi's wheel lacks {SOUNDFONT} (looked at {path})", "pip install pretty-midi==0.2.11")
    return path


def check_styles(styles: Sequence[str], held_out: Sequence[str]) -> None:
    """Known styles, at least two, held-out ones among them, and no program shared by a held-out and a training style."""
    unknown = [s for s in (*styles, *held_out) if s not in ENSEMBLES]
    if unknown:
        raise UserError(f"data.rendered: unknown style(s) {unknown}", f"choose from {sorted(ENSEMBLES)}")
    if len(set(styles)) != len(styles) or len(styles) < 2:
        raise UserError(f"data.rendered.styles={list(styles)}: list two styles or more, each once", "e.g. styles=[piano,strings]")
    stray = [s for s in held_out if s not in styles]
    training = [s for s in styles if s not in held_out]
    if stray or len(training) < 2:
        raise UserError(
            f"data.rendered.held_out={list(held_out)} must name styles of data.rendered.styles and leave two or more to train on",
            "e.g. held_out=[saxes]",
        )
    for style in held_out:
        shared = {p for p in ENSEMBLES[style].programs} & {p for s in training for p in ENSEMBLES[s].programs}
        if shared:
            raise UserError(
                f"held-out style {style} shares GM program(s) {sorted(shared)} with a training style",
                "hold out a style whose instruments no training style uses",
            )


# --- pieces: notes in seconds ---------------------------------------------------------------------------------------

Note = tuple[int, int, float, float, int]  # voice, MIDI pitch, start s, end s, velocity


def chorale_paths(n: int) -> list[Path]:
    """The first `n` distinct Bach chorales of music21's corpus, by file name (each BWV number once)."""
    check_installed()
    from music21 import corpus

    seen: dict[str, Path] = {}
    for path in sorted(corpus.getComposer("bach"), key=lambda p: p.name):
        seen.setdefault(path.name.split(".mxl")[0].split(".xml")[0], Path(path))
    return list(seen.values())[: max(n * 2, n + 10)]  # spares: some are not four-part; `piece_sources` stops at n


def chorale_notes(path: Path, tempo: float, seconds: float) -> list[Note] | None:
    """A chorale's notes (ties joined) in its first `seconds` at `tempo`, or None unless it has exactly four parts."""
    from music21 import converter, stream

    score = converter.parse(path)
    if not isinstance(score, stream.Score) or len(score.parts) != 4:
        return None
    per_second = tempo / 60.0
    notes: list[Note] = []
    for voice, part in enumerate(score.parts):
        flat = part.stripTies().flatten()  # offsets from the piece's start
        for element in flat.notes:
            start = float(element.getOffsetBySite(flat)) / per_second
            end = start + float(element.quarterLength) / per_second
            if start >= seconds:
                continue
            notes += [(voice, int(p.midi), start, min(end, seconds), VELOCITY) for p in element.pitches]
    return sorted(notes, key=lambda n: (n[2], n[0], n[1]))


def midi_notes(path: Path, seconds: float) -> list[Note]:
    """A MIDI file's pitched notes in its first `seconds`: each non-drum instrument a voice, in file order."""
    import pretty_midi

    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido and pretty-midi raise several kinds for a file that is not MIDI
        raise UserError(f"{path} is not a readable MIDI file ({exc})", "pass .mid files (data.rendered.midi)") from None
    voices = [i for i in midi.instruments if not i.is_drum]
    notes = [
        (v, int(n.pitch), float(n.start), float(min(n.end, seconds)), int(n.velocity))
        for v, instrument in enumerate(voices)
        for n in instrument.notes
        if n.start < seconds
    ]
    if not notes:
        raise UserError(f"{path} has no pitched notes in its first {seconds:g} s", "pass MIDI files with notes")
    return sorted(notes, key=lambda n: (n[2], n[0], n[1]))


def midi_files(entries: Iterable[str]) -> list[Path]:
    files: list[Path] = []
    for entry in entries:
        path = Path(entry).expanduser()
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(
                f"data.rendered.midi: {entry} is neither a MIDI file nor a folder", "pass .mid files or folders of them"
            )
    return files


# --- rendering -------------------------------------------------------------------------------------------------------


def voice_programs(ensemble: Ensemble, n_voices: int) -> list[int]:
    """Each voice's program: the ensemble's programs spread over the piece's voices, top to bottom."""
    k = len(ensemble.programs)
    return [ensemble.programs[round(v * (k - 1) / max(n_voices - 1, 1))] for v in range(n_voices)]


def render(notes: Sequence[Note], ensemble: Ensemble, seconds: float, sample_rate: int, soundfont: Path, seed: str) -> np.ndarray:
    """`[samples]` float32 mono: the notes played by the ensemble's programs (one MIDI channel a voice, at most 15;
    channel 9, the drums, skipped), the last second's release kept inside `seconds`, then the room. Deterministic:
    the synthesiser has no randomness, the room's impulse response is seeded by the style's name (`seed`)."""
    import tinysoundfont

    synth = tinysoundfont.Synth(gain=-6.0, samplerate=sample_rate)
    sfid = synth.sfload(str(soundfont))
    n_voices = 1 + max(n[0] for n in notes)
    channels = [c for c in range(16) if c != 9]
    for voice, program in enumerate(voice_programs(ensemble, n_voices)):
        if voice < len(channels):
            synth.program_select(channels[voice], sfid, 0, program)
    events = sorted(
        [(start, 1, voice, pitch, velocity) for voice, pitch, start, _, velocity in notes if voice < len(channels)]
        + [(end, 0, voice, pitch, 0) for voice, pitch, _, end, _ in notes if voice < len(channels)]
    )  # at the same instant a note-off sorts first: a repeated note is struck again
    total = int(round(seconds * sample_rate))
    out = np.zeros(total, dtype=np.float32)
    now = 0
    for time, on, voice, pitch, velocity in events:
        sample = min(int(round(time * sample_rate)), total)
        if sample > now:
            out[now:sample] = np.frombuffer(synth.generate(sample - now), dtype=np.float32).reshape(-1, 2).mean(axis=1)
            now = sample
        if on:
            synth.noteon(channels[voice], pitch, velocity)
        else:
            synth.noteoff(channels[voice], pitch)
    if now < total:
        out[now:] = np.frombuffer(synth.generate(total - now), dtype=np.float32).reshape(-1, 2).mean(axis=1)
    if ensemble.reverb_s > 0:
        out = room(out, ensemble.reverb_s, sample_rate, seed)
    top = float(np.abs(out).max())
    return out if top <= 0.99 else (out * (0.99 / top)).astype(np.float32)


def room(signal: np.ndarray, reverb_s: float, sample_rate: int, seed: str, wet: float = 0.35) -> np.ndarray:
    """A room: the signal plus `wet` times itself convolved with exponentially decaying noise (60 dB down after
    `reverb_s`), seeded by `seed`, cut to the signal's length."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(zlib.crc32(seed.encode()))
    n = int(reverb_s * sample_rate)
    impulse = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    impulse /= np.sqrt(np.square(impulse).sum())
    return (signal + wet * fftconvolve(signal, impulse)[: len(signal)]).astype(np.float32)


# --- the corpus ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedCorpus:
    """A rendered corpus on disk: `folder` holds `<style>/<style>.<piece>.wav`; `pieces` maps each piece to its split,
    `held_out` the styles never trained on; `manifest` lists the training styles' files with their pieces' splits."""

    folder: Path
    pieces: dict[str, str]
    styles: tuple[str, ...]
    held_out: tuple[str, ...]
    manifest: Path
    sample_rate: int
    key: str = ""  # `<settings key>/corpus-<list key>`: which rendering and which pieces, styles and split

    def path(self, style: str, piece: str) -> Path:
        return self.folder / style / f"{style}.{piece}.wav"

    def split_pieces(self, split: str) -> list[str]:
        return [p for p, s in self.pieces.items() if s == split]

    @property
    def training_styles(self) -> list[str]:
        return [s for s in self.styles if s not in self.held_out]

    def rendered_styles(self, piece: str) -> list[str]:
        """Held-out styles exist for val and test pieces only."""
        return [s for s in self.styles if s not in self.held_out or self.pieces[piece] != "train"]

    @classmethod
    def load(cls, description: str | Path) -> RenderedCorpus:
        """A corpus from the `corpus-<key>.json` that `render_corpus` writes beside its files."""
        path = Path(description)
        data = json.loads(path.read_text())
        return cls(
            path.parent, data["pieces"], tuple(data["styles"]), tuple(data["held_out"]),
            path.parent / data["manifest"], data["sample_rate"], f"{path.parent.name}/{path.stem}",
        )  # fmt: skip


def _split(names: Sequence[str], sizes: Sequence[float], seed: int) -> dict[str, str]:
    """Pieces to splits: a seeded shuffle cut by the fractions, at least one piece in each split."""
    if len(sizes) != 3 or any(s <= 0 for s in sizes):
        raise UserError(f"data.rendered.split_sizes={list(sizes)}: three fractions > 0", "e.g. [0.6, 0.2, 0.2]")
    if len(names) < 3:
        raise UserError(f"data.rendered has {len(names)} piece(s); a train/val/test split needs 3 or more", "raise chorales")
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    fractions = np.asarray(sizes, dtype=float) / float(sum(sizes))
    n_val = max(1, int(round(fractions[1] * len(names))))
    n_test = max(1, int(round(fractions[2] * len(names))))
    n_train = len(names) - n_val - n_test
    return {name: SPLITS[0] if i < n_train else SPLITS[1] if i < n_train + n_val else SPLITS[2] for i, name in enumerate(order)}


def _write_atomic(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _notes_of(source: tuple[str, str], spec: RenderSpec, folder: Path) -> list[Note] | None:
    """A piece's notes, parsed once and kept as `notes/<piece>.json` (None: a chorale that is not four-part)."""
    kind, path = source
    cached = folder / "notes" / f"{Path(path).name}.json"
    if cached.is_file():
        data = json.loads(cached.read_text())
        return None if data is None else [tuple(n) for n in data]
    notes = chorale_notes(Path(path), spec.tempo, spec.seconds) if kind == "chorale" else midi_notes(Path(path), spec.seconds)
    _write_atomic(cached, lambda p: p.write_text(json.dumps(notes)))
    return notes


def _render_piece(job: tuple[str, list[Note], tuple[str, ...], RenderSpec, str]) -> int:
    """Every missing style of one piece; returns how many files it wrote."""
    import soundfile as sf

    piece, notes, styles, spec, folder = job
    soundfont = soundfont_path()
    written = 0
    for style in styles:
        path = Path(folder) / style / f"{style}.{piece}.wav"
        if path.is_file():
            continue
        audio = render(notes, ENSEMBLES[style], spec.seconds, spec.sample_rate, soundfont, style)
        _write_atomic(path, lambda p, a=audio: sf.write(p, a, spec.sample_rate, subtype="PCM_16"))
        written += 1
    return written


def _parse_job(job: tuple[tuple[str, str], RenderSpec, str]) -> list[Note] | None:
    return _notes_of(job[0], job[1], Path(job[2]))


def _read_pieces(
    sources: Sequence[tuple[str, tuple[str, str]]], spec: RenderSpec, folder: Path, workers: int, progress: bool
) -> dict[str, list[Note]]:
    """Each piece's notes (parsed in batches of `2 * workers`, in order), stopping at `spec.chorales` four-part
    chorales; every MIDI file is kept."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    notes: dict[str, list[Note]] = {}
    chorales = 0
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        with tqdm(total=len(sources), desc="reading pieces", unit="piece", disable=not progress) as bar:
            for start in range(0, len(sources), 2 * workers):
                batch = [s for s in sources[start : start + 2 * workers] if s[1][0] == "midi" or chorales < spec.chorales]
                jobs = [(source, spec, str(folder)) for _, source in batch]
                results = list(pool.map(_parse_job, jobs)) if pool else [_parse_job(job) for job in jobs]
                for (piece, source), parsed in zip(batch, results):
                    if parsed and (source[0] == "midi" or chorales < spec.chorales):
                        notes[piece] = parsed
                        chorales += source[0] == "chorale"
                bar.update(len(sources[start : start + 2 * workers]))
    finally:
        if pool:
            pool.shutdown()
    return notes


def piece_sources(spec: RenderSpec) -> list[tuple[str, tuple[str, str]]]:
    """`(piece id, (kind, path))` of the first `spec.chorales` chorales, then the MIDI files, ids unique."""
    sources: list[tuple[str, tuple[str, str]]] = [
        (path.name.split(".mxl")[0].split(".xml")[0], ("chorale", str(path))) for path in chorale_paths(spec.chorales)
    ] if spec.chorales else []  # fmt: skip
    for path in midi_files(spec.midi):
        sources.append((f"midi-{path.stem}", ("midi", str(path))))
    ids = [piece for piece, _ in sources]
    repeated = sorted({p for p in ids if ids.count(p) > 1})
    if repeated:
        raise UserError(f"data.rendered.midi: several files are named {repeated}", "give each MIDI file its own name")
    return sources


def find_corpus(root: str | Path, spec: RenderSpec) -> RenderedCorpus:
    """The corpus `spec` names under `root`, already rendered whole (what a benchmark scores: it never renders one,
    so settings other than the models' are refused at once instead of rendering a corpus they never saw)."""
    description = Path(root).expanduser() / spec.settings_key() / f"corpus-{spec.list_key()}.json"
    if description.is_file():
        corpus = RenderedCorpus.load(description)
        if all(corpus.path(s, p).is_file() for p in corpus.pieces for s in corpus.rendered_styles(p)):
            return corpus
    raise UserError(
        f"no complete rendered corpus with these settings under {root} ({description.relative_to(Path(root).expanduser())})",
        "give the --rendered KEY=VALUE settings the models were trained with (training with data=rendered renders it)",
    )


def render_corpus(root: str | Path, spec: RenderSpec, progress: bool = True, workers: int | None = None) -> RenderedCorpus:
    """Render what is missing under `root/<settings key>/`, write the manifest of the training styles and the corpus
    description (`corpus-<list key>.json`), and return the corpus. A second call with the same spec writes nothing."""
    from tqdm.auto import tqdm

    check_styles(spec.styles, spec.held_out)
    folder = Path(root).expanduser() / spec.settings_key()
    description = folder / f"corpus-{spec.list_key()}.json"
    try:
        return find_corpus(root, spec)  # complete: reading it needs none of the renderer's packages
    except UserError:
        pass
    check_installed()
    from genre_style.data.preprocess import resolve_workers

    n_workers = resolve_workers(workers)
    notes = _read_pieces(piece_sources(spec), spec, folder, n_workers, progress)
    splits = _split(list(notes), spec.split_sizes, spec.seed)
    jobs = [
        (
            piece,
            notes[piece],
            tuple(s for s in spec.styles if s not in spec.held_out or splits[piece] != "train"),
            spec,
            str(folder),
        )
        for piece in notes
    ]
    n_workers = min(n_workers, len(jobs))
    bar = dict(total=len(jobs), desc="rendering pieces", unit="piece", disable=not progress)
    if n_workers <= 1:
        written = sum(_render_piece(job) for job in tqdm(jobs, **bar))
    else:  # each file depends on its notes and style only: the same corpus whatever the number of workers
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=n_workers) as pool:
            written = sum(tqdm(pool.map(_render_piece, jobs), **bar))
    manifest = folder / f"manifest-{spec.list_key()}.csv"
    rows = [
        {"path": f"{style}/{style}.{piece}.wav", "genre": style, "split": splits[piece], "artist": piece}
        for style in spec.styles if style not in spec.held_out for piece in notes
    ]  # fmt: skip

    def write_manifest(path: Path) -> None:
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["path", "genre", "split", "artist"])
            writer.writeheader()
            writer.writerows(rows)

    _write_atomic(manifest, write_manifest)
    data = {
        "pieces": splits, "styles": list(spec.styles), "held_out": list(spec.held_out), "manifest": manifest.name,
        "sample_rate": spec.sample_rate, "spec": asdict(spec), "soundfont": SOUNDFONT,
    }  # fmt: skip
    _write_atomic(description, lambda p: p.write_text(json.dumps(data, indent=2, default=list)))
    log.info("rendered corpus: %d pieces x %d styles at %s (%d files written)", len(notes), len(spec.styles), folder, written)
    return RenderedCorpus.load(description)
