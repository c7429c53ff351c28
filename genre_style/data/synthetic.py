"""A deterministic, built-in stand-in for GTZAN: synthesised songs written as WAV files in GTZAN's layout.

Four genres differ the way real ones do (instrumentation and timbre, rhythm and drums, harmony, tempo),
with wide variation inside each genre and deliberate overlap between them (drum-less jazz ballads,
pop with distorted guitar, metal with clean intros), so no model gets 100 % for free.
It goes through exactly the same reader, cache and split code as GTZAN.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SYNTHETIC_GENRES = ("classical", "jazz", "pop", "metal")
GENERATOR_VERSION = 1
MANIFEST = "synthetic.json"


@dataclass(frozen=True)
class SyntheticSpec:
    """What the corpus looks like; any change regenerates it."""

    genres: tuple[str, ...] = SYNTHETIC_GENRES
    tracks_per_genre: int = 25
    seconds: float = 10.0
    sample_rate: int = 22050
    seed: int = 0
    version: int = field(default=GENERATOR_VERSION)

    def manifest(self) -> dict:
        data = asdict(self)
        data["genres"] = list(self.genres)
        return data


# --- instruments -------------------------------------------------------------------------------


def _midi_hz(note: float | np.integer) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


class _Mixer:
    """A mono buffer that instruments add notes into."""

    def __init__(self, seconds: float, sr: int) -> None:
        self.sr = sr
        self.buf = np.zeros(int(seconds * sr), dtype=np.float64)

    def add(self, start_s: float, sound: np.ndarray, gain: float = 1.0) -> None:
        start = int(start_s * self.sr)
        if start >= len(self.buf) or start + len(sound) <= 0:
            return
        if start < 0:
            sound, start = sound[-start:], 0
        end = min(len(self.buf), start + len(sound))
        self.buf[start:end] += gain * sound[: end - start]

    def t(self, seconds: float) -> np.ndarray:
        return np.arange(int(seconds * self.sr)) / self.sr


def _harmonic_tone(
    m: _Mixer, hz: float, dur: float, amps: np.ndarray, attack: float, decay: float, vibrato: float = 0.0
) -> np.ndarray:
    t = m.t(dur)
    phase = 2 * np.pi * hz * t + (vibrato * np.sin(2 * np.pi * 5.5 * t) if vibrato else 0.0)
    wave = sum(a * np.sin((k + 1) * phase) for k, a in enumerate(amps) if (k + 1) * hz < m.sr / 2)
    env = np.minimum(1.0, t / max(attack, 1e-3)) * np.exp(-t / decay)
    return wave * env


def _kick(m: _Mixer, rng: np.random.Generator) -> np.ndarray:
    t = m.t(0.35)
    f = rng.uniform(45, 60) + rng.uniform(60, 120) * np.exp(-t / 0.03)
    return np.sin(2 * np.pi * np.cumsum(f) / m.sr) * np.exp(-t / rng.uniform(0.08, 0.18))


def _snare(m: _Mixer, rng: np.random.Generator, brush: bool = False) -> np.ndarray:
    t = m.t(0.25)
    noise = rng.standard_normal(len(t)) * np.exp(-t / (0.12 if brush else 0.06))
    body = np.sin(2 * np.pi * rng.uniform(170, 230) * t) * np.exp(-t / 0.05)
    return 0.5 * noise * (0.4 if brush else 1.0) + (0.2 if brush else 0.8) * body


def _cymbal(m: _Mixer, rng: np.random.Generator, length: float) -> np.ndarray:
    t = m.t(length)
    noise = np.diff(rng.standard_normal(len(t) + 1))  # crude high-pass: cymbals are all top end
    return 0.25 * noise * np.exp(-t / (length / 3))


def _distorted(m: _Mixer, hz: float, dur: float, gain: float, palm_mute: bool) -> np.ndarray:
    t = m.t(dur)
    saw = sum(2 * ((f * t) % 1.0) - 1 for f in (hz, hz * 1.5, hz * 2.0))
    env = np.exp(-t / (0.08 if palm_mute else 0.8)) * np.minimum(1.0, t / 0.005)
    return np.tanh(gain * saw * env) * 0.6


def _scale(minor: bool) -> list[int]:
    return [0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11]


# --- genres ------------------------------------------------------------------------------------


def _classical(m: _Mixer, rng: np.random.Generator, seconds: float) -> None:
    beat = 60 / rng.uniform(50, 100)
    root = rng.integers(48, 60)
    scale = _scale(rng.random() < 0.5)
    strings = 1.0 / np.arange(1, 9) ** rng.uniform(1.0, 1.8)
    t, degree = 0.0, 0
    while t < seconds:
        length = beat * rng.choice([2, 3, 4])
        chord = [root + scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        for note in chord:
            m.add(
                t,
                _harmonic_tone(m, _midi_hz(note), length * 1.1, strings, attack=rng.uniform(0.1, 0.5), decay=3.0, vibrato=0.3),
                0.25,
            )
        for k in range(int(rng.integers(1, 5))):  # a melody line above
            note = root + 12 + scale[rng.integers(0, 7)]
            m.add(t + k * length / 4, _harmonic_tone(m, _midi_hz(note), length / 3, strings[:5], 0.05, 1.0, vibrato=0.5), 0.2)
        if rng.random() < 0.2:  # timpani
            m.add(t, _harmonic_tone(m, _midi_hz(root - 12), 1.0, np.array([1.0, 0.5]), 0.005, 0.4), 0.5)
        degree = (degree + rng.choice([1, 3, 4, 5])) % 7
        t += length


def _jazz(m: _Mixer, rng: np.random.Generator, seconds: float) -> None:
    beat = 60 / rng.uniform(80, 200)
    swing = rng.uniform(0.6, 0.7)
    root = rng.integers(38, 46)
    scale = _scale(False) if rng.random() < 0.6 else [0, 2, 3, 5, 7, 9, 10]  # major or dorian
    drums = rng.random() > 0.25
    bass_amps = np.array([1.0, 0.4, 0.15])
    piano = 1.0 / np.arange(1, 7) ** 1.5
    pos, n = 0, 0
    while n * beat < seconds:
        t = n * beat
        pos = int(np.clip(pos + rng.choice([-2, -1, 1, 2]), -3, 10))  # walking bass
        note = root + scale[pos % 7] + 12 * (pos // 7)
        m.add(t, _harmonic_tone(m, _midi_hz(note), beat * 0.95, bass_amps, 0.01, 0.5), 0.7)
        if drums:
            m.add(t, _cymbal(m, rng, 0.4), 0.5)
            if n % 2 == 1:
                m.add(t + swing * beat, _cymbal(m, rng, 0.2), 0.4)
                m.add(t, _snare(m, rng, brush=True), 0.3)
        if rng.random() < 0.45:  # comping: a 7th chord on or off the beat
            offset = 0.0 if rng.random() < 0.5 else swing * beat
            chord_root = root + 12 + scale[rng.integers(0, 7)]
            for interval in (0, 4, 7, 10) if rng.random() < 0.5 else (0, 3, 7, 10):
                m.add(t + offset, _harmonic_tone(m, _midi_hz(chord_root + interval), 0.8, piano, 0.005, 0.35), 0.15)
        n += 1


def _pop(m: _Mixer, rng: np.random.Generator, seconds: float) -> None:
    beat = 60 / rng.uniform(90, 132)
    root = rng.integers(40, 48)
    scale = _scale(rng.random() < 0.3)
    four_on_floor = rng.random() < 0.5
    guitar = rng.random() < 0.2
    synth = 1.0 / np.arange(1, 10)
    synth[1::2] *= rng.uniform(0.0, 0.5)  # square-ish
    progression = rng.choice([[0, 4, 5, 3], [0, 5, 3, 4], [5, 3, 0, 4]])
    n = 0
    while n * beat < seconds:
        t, bar, step = n * beat, n // 4, n % 4
        degree = progression[bar % 4]
        chord_root = root + scale[degree]
        if four_on_floor or step in (0, 2):
            m.add(t, _kick(m, rng), 0.9)
        if step in (1, 3):
            m.add(t, _snare(m, rng), 0.6)
        for half in (0.0, 0.5):
            m.add(t + half * beat, _cymbal(m, rng, 0.08), 0.3)
            m.add(t + half * beat, _harmonic_tone(m, _midi_hz(chord_root), beat * 0.45, np.array([1.0, 0.3]), 0.005, 0.25), 0.5)
        if step == 0:
            for interval in (12, 16 if degree in (0, 3, 4) else 15, 19):
                m.add(t, _harmonic_tone(m, _midi_hz(chord_root + interval), 4 * beat, synth, 0.02, 2.0), 0.12)
            if guitar:
                m.add(t, _distorted(m, _midi_hz(chord_root), 4 * beat, 3.0, False), 0.3)
        if rng.random() < 0.6:  # a sung-like lead
            note = root + 24 + scale[rng.integers(0, 7)]
            m.add(t, _harmonic_tone(m, _midi_hz(note), beat * 0.9, np.array([1.0, 0.5, 0.2]), 0.03, 0.6, vibrato=0.8), 0.25)
        n += 1


def _metal(m: _Mixer, rng: np.random.Generator, seconds: float) -> None:
    beat = 60 / rng.uniform(100, 200)
    root = rng.integers(26, 34)  # low tunings
    scale = [0, 1, 3, 5, 7, 8, 10] if rng.random() < 0.5 else _scale(True)  # phrygian or minor
    double_kick = rng.random() < 0.6
    subdivision = 4 if rng.random() < 0.5 else 2
    gain = rng.uniform(4, 12)
    clean_intro = rng.uniform(0, seconds / 2) if rng.random() < 0.2 else 0.0
    piano = 1.0 / np.arange(1, 6) ** 1.3
    n = 0
    while n * beat < seconds:
        t, step = n * beat, n % 4
        if t < clean_intro:  # a clean, drum-less arpeggio
            note = root + 24 + scale[rng.integers(0, 7)]
            m.add(t, _harmonic_tone(m, _midi_hz(note), beat * 1.5, piano, 0.005, 0.6), 0.3)
            n += 1
            continue
        riff = root + scale[rng.choice([0, 0, 0, 1, 4])]
        for k in range(subdivision):
            sub = t + k * beat / subdivision
            m.add(sub, _distorted(m, _midi_hz(riff), beat / subdivision, gain, palm_mute=True), 0.5)
            if double_kick or k == 0:
                m.add(sub, _kick(m, rng), 0.8)
        if step in (1, 3):
            m.add(t, _snare(m, rng), 0.7)
        if step == 0 and rng.random() < 0.3:
            m.add(t, _cymbal(m, rng, 1.0), 0.6)
        n += 1


RENDERERS = {"classical": _classical, "jazz": _jazz, "pop": _pop, "metal": _metal}


def render_track(genre: str, seed: int | list[int], seconds: float = 10.0, sample_rate: int = 22050) -> np.ndarray:
    """One synthesised song of `genre`, float32 mono in [-1, 1], the same for the same seed."""
    rng = np.random.default_rng(seed)
    mixer = _Mixer(seconds, sample_rate)
    RENDERERS[genre](mixer, rng, seconds)
    signal = mixer.buf
    # Recording differences: a random tone colour (one-pole low-pass), noise floor and level.
    alpha = rng.uniform(0.3, 1.0)
    if alpha < 1.0:
        from scipy.signal import lfilter

        signal = lfilter([alpha], [1, alpha - 1], signal)
    signal = signal + rng.uniform(0.0, 0.05) * np.std(signal) * rng.standard_normal(len(signal))
    peak = np.max(np.abs(signal)) or 1.0
    return (signal / peak * rng.uniform(0.3, 0.95)).astype(np.float32)


def _write_track(job: tuple[str, int, SyntheticSpec, str]) -> None:
    import soundfile as sf

    genre, n, spec, folder = job
    audio = render_track(genre, [spec.seed, SYNTHETIC_GENRES.index(genre), n], spec.seconds, spec.sample_rate)
    sf.write(Path(folder) / genre / f"{genre}.{n:05d}.wav", audio, spec.sample_rate, subtype="PCM_16")


def _holds_corpus(root: Path, spec: SyntheticSpec) -> bool:
    """Whether `root` already holds this very corpus (its manifest, written last, says so)."""
    try:
        return json.loads((root / MANIFEST).read_text()) == spec.manifest()
    except (OSError, json.JSONDecodeError):
        return False


def generate_corpus(
    root: str | Path, spec: SyntheticSpec = SyntheticSpec(), progress: bool = True, workers: int | None = None
) -> Path:
    """Write the corpus under `root` as `<genre>/<genre>.NNNNN.wav`, unless an identical one is already there.

    Written into a temporary sibling folder and renamed into place, so a killed run never leaves half a corpus.
    """
    from tqdm.auto import tqdm

    from genre_style.data.preprocess import resolve_workers

    root = Path(root)
    if _holds_corpus(root, spec):
        return root
    unknown = [g for g in spec.genres if g not in RENDERERS]
    if unknown:
        from genre_style.errors import UserError

        raise UserError(f"the synthetic corpus has no genre(s) {unknown}", f"choose from {list(RENDERERS)}")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        for genre in spec.genres:
            (staging / genre).mkdir()
        jobs = [(g, n, spec, str(staging)) for g in spec.genres for n in range(spec.tracks_per_genre)]
        workers = min(resolve_workers(workers), len(jobs))
        bar = dict(total=len(jobs), desc="writing synthetic corpus", unit="track", disable=not progress)
        if workers == 1:
            for job in tqdm(jobs, **bar):
                _write_track(job)
        else:  # each track has its own seed: the corpus is the same whatever the number of workers
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=workers) as pool:
                list(tqdm(pool.map(_write_track, jobs, chunksize=2), **bar))
        (staging / MANIFEST).write_text(json.dumps(spec.manifest(), indent=2))
        if _holds_corpus(root, spec):  # another run wrote the same corpus meanwhile and may be reading it: keep it
            return root
        if root.exists():
            shutil.rmtree(root)
        try:
            staging.rename(root)
        except OSError:  # another run renamed its copy into place between the check and here
            if not _holds_corpus(root, spec):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return root
