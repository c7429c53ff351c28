"""data=rendered: the same notes in several styles, deterministic, cached, split by piece with held-out styles."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from genre_style.errors import UserError
from tests.transfer_extra import require_transfer_extra

require_transfer_extra()

from genre_style.data import rendered  # noqa: E402
from genre_style.data.rendered import ENSEMBLES, RenderSpec, render, render_corpus  # noqa: E402

SR = 22050
# Two voices: a C major arpeggio over a held bass; onsets at 0, 0.5, 1.0, 1.5 s.
NOTES = [(0, 72, 0.0, 0.45, 90), (0, 76, 0.5, 0.95, 90), (0, 79, 1.0, 1.45, 90), (0, 84, 1.5, 1.95, 90), (1, 48, 0.0, 1.9, 90)]


def _level_jumps(signal: np.ndarray, hop: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Frame times and the rise in dB of each frame's level over the frame before (a struck note: a jump)."""
    frames = signal[: len(signal) // hop * hop].reshape(-1, hop)
    level = 10 * np.log10(np.square(frames).mean(axis=1) + 1e-10)
    return np.arange(1, len(frames)) * hop / SR, np.diff(level)


def test_the_same_notes_in_two_styles_sound_different_at_the_same_times() -> None:
    soundfont = rendered.soundfont_path()
    piano = render(NOTES, ENSEMBLES["piano"], 2.0, SR, soundfont, "piano")
    again = render(NOTES, ENSEMBLES["piano"], 2.0, SR, soundfont, "piano")
    strings = render(NOTES, ENSEMBLES["strings"], 2.0, SR, soundfont, "strings")
    assert piano.shape == strings.shape == (2 * SR,) and piano.dtype == np.float32
    np.testing.assert_array_equal(piano, again)  # deterministic, room included
    assert np.sqrt(np.mean(piano**2)) > 1e-3 and np.sqrt(np.mean(strings**2)) > 1e-3
    # different timbre: the long-term spectra differ by far more than a level
    spectra = [np.log(np.abs(np.fft.rfft(s)) ** 2 + 1e-8) for s in (piano, strings)]
    assert np.corrcoef(*spectra)[0, 1] < 0.9
    # the same notes: the piano's struck onsets fall on the score's (0, 0.5, 1.0, 1.5 s)
    times, jumps = _level_jumps(piano)
    for expected in (0.5, 1.0, 1.5):
        near = np.abs(times - expected) < 0.03
        assert jumps[near].max() > 3.0 and jumps[near].max() > 3 * np.median(np.abs(jumps)), expected


def test_voices_spread_over_an_ensembles_programs() -> None:
    ensemble = ENSEMBLES["strings"]  # violin, violin, viola, cello
    assert rendered.voice_programs(ensemble, 4) == [40, 40, 41, 42]
    assert rendered.voice_programs(ensemble, 2) == [40, 42]  # melody and bass: top and bottom
    assert rendered.voice_programs(ENSEMBLES["piano"], 3) == [0, 0, 0]


def test_every_style_is_in_the_soundfont() -> None:
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=SR)
    sfid = synth.sfload(str(rendered.soundfont_path()))
    for name, ensemble in ENSEMBLES.items():
        for program in ensemble.programs:
            assert synth.sfpreset_name(sfid, 0, program), (name, program)


def test_held_out_styles_share_no_program_with_training_styles(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered.check_styles(RenderSpec().styles, RenderSpec().held_out)
    monkeypatch.setitem(ENSEMBLES, "cellos", rendered.Ensemble((42,)))  # the strings' cello
    with pytest.raises(UserError, match=r"cellos shares GM program\(s\) \[42\]"):
        rendered.check_styles(("piano", "strings", "cellos"), ("cellos",))
    with pytest.raises(UserError, match="unknown style"):
        rendered.check_styles(("piano", "kazoo"), ())
    with pytest.raises(UserError, match="leave two or more"):
        rendered.check_styles(("piano", "saxes"), ("saxes",))


def _midi(path: Path, pitches: list[int]) -> Path:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    for program, offset in ((0, 0), (32, -24)):
        instrument = pretty_midi.Instrument(program=program)
        for i, pitch in enumerate(pitches):
            instrument.notes.append(pretty_midi.Note(velocity=90, pitch=pitch + offset, start=0.25 * i, end=0.25 * i + 0.2))
        midi.instruments.append(instrument)
    midi.write(str(path))
    return path


@pytest.fixture(scope="module")
def midi_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("midi")
    for i in range(5):
        _midi(folder / f"tune{i}.mid", [60 + i, 64 + i, 67 + i, 72 + i, 67 + i, 64 + i])
    return folder


SPEC = dict(chorales=0, seconds=1.5, styles=("piano", "strings", "organ", "saxes"), held_out=("saxes",))


def test_a_corpus_is_split_by_piece_held_out_styles_only_for_val_and_test(
    tmp_path: Path, midi_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = RenderSpec(midi=(str(midi_folder),), **SPEC)  # type: ignore[arg-type]
    corpus = render_corpus(tmp_path / "rendered", spec, progress=False, workers=1)
    assert sorted(corpus.pieces) == [f"midi-tune{i}" for i in range(5)]
    assert sorted(corpus.pieces.values()) == ["test", "train", "train", "train", "val"]
    for piece, split in corpus.pieces.items():
        for style in spec.styles:
            exists = corpus.path(style, piece).is_file()
            assert exists == (style != "saxes" or split != "train"), (style, piece)
    with corpus.manifest.open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["genre"] for r in rows} == {"piano", "strings", "organ"}  # held-out styles are never trained on
    assert all(r["split"] == corpus.pieces[r["artist"]] for r in rows)
    assert len(rows) == 3 * 5
    import soundfile as sf

    audio, rate = sf.read(corpus.path("organ", "midi-tune0"))
    assert rate == SR and len(audio) == int(1.5 * SR)
    # a second call renders nothing and finds the same corpus
    stamps = {p: p.stat().st_mtime_ns for p in corpus.folder.rglob("*.wav")}
    again = render_corpus(tmp_path / "rendered", spec, progress=False, workers=1)
    assert again == corpus and {p: p.stat().st_mtime_ns for p in corpus.folder.rglob("*.wav")} == stamps
    # another style list reuses every file already rendered
    wider = render_corpus(
        tmp_path / "rendered",
        RenderSpec(midi=(str(midi_folder),), **{**SPEC, "styles": (*SPEC["styles"], "brass")}),
        progress=False,
        workers=1,
    )  # type: ignore[arg-type]
    assert wider.folder == corpus.folder and all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert wider.path("brass", "midi-tune0").is_file()
    assert corpus.key == f"{spec.settings_key()}/corpus-{spec.list_key()}" != wider.key
    # a complete corpus is read without the renderer's packages; one to finish needs them, and says so
    monkeypatch.setattr(rendered, "_missing", lambda name: True)
    assert render_corpus(tmp_path / "rendered", spec, progress=False, workers=1) == corpus
    corpus.path("organ", "midi-tune0").unlink()
    with pytest.raises(UserError, match="data=rendered needs music21, pretty_midi, tinysoundfont"):
        render_corpus(tmp_path / "rendered", spec, progress=False, workers=1)


def test_chorales_come_from_music21s_corpus_four_parts_each(tmp_path: Path) -> None:
    import json

    spec = RenderSpec(chorales=3, seconds=2.0, styles=("piano", "strings"), held_out=())
    corpus = render_corpus(tmp_path, spec, progress=False, workers=1)
    assert len(corpus.pieces) == 3 and all(p.startswith("bwv") for p in corpus.pieces)
    for piece in corpus.pieces:  # each piece's notes kept once, four voices within the first 2 s
        notes = json.loads((corpus.folder / "notes" / f"{piece}.mxl.json").read_text())
        assert {n[0] for n in notes} == {0, 1, 2, 3} and all(0 <= n[2] < n[3] <= 2.0 for n in notes)


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[3] / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def test_the_data_module_trains_on_training_styles_split_by_piece(tmp_path: Path, midi_folder: Path) -> None:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = _compose(["data=rendered", f"data.source.root={tmp_path}", "data.store.workers=1", "data.progress=false", "data.clips.clips_per_track=1",
                   f"data.rendered.midi=[{midi_folder}]", "data.rendered.chorales=0", "data.rendered.seconds=1.5",
                   "data.rendered.styles=[piano,strings,organ,saxes]", "data.rendered.held_out=[saxes]", f"data.store.cache_dir={tmp_path / 'cache'}"])  # fmt: skip
    module = instantiate(cfg.data)
    module.prepare_data()
    module.setup("fit")
    assert module.class_names == ["organ", "piano", "strings"]
    pieces = {
        name: {module.track_ids[t].split(".", 1)[1] for t in module.tensors[name][2].tolist()}
        for name in ("train", "val", "test")
    }
    assert len(pieces["train"]) == 3 and len(pieces["val"]) == 1 and len(pieces["test"]) == 1
    assert not (pieces["train"] & pieces["val"]) and not (pieces["train"] & pieces["test"])
    assert OmegaConf.select(cfg, "data.rendered.sample_rate") == module.spec.sample_rate


def test_a_missing_renderer_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rendered, "_missing", lambda name: name == "tinysoundfont")
    with pytest.raises(UserError) as error:
        rendered.check_installed()
    assert "tinysoundfont" in str(error.value) and "pip install --no-deps tinysoundfont==0.3.7" in str(error.value)


def test_bad_settings_say_which(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no setting"):
        RenderSpec.from_config({"chorale": 3})
    # the command-line tools read data.rendered settings as training does
    spec = RenderSpec.from_overrides(["chorales=12", "styles=[piano, organ, saxes]", "held_out=[]", "seconds=4"])
    assert spec == RenderSpec(chorales=12, styles=("piano", "organ", "saxes"), held_out=(), seconds=4.0)
    assert RenderSpec.from_overrides([]) == RenderSpec()
    assert RenderSpec.from_overrides(["seconds=15"]).settings_key() == RenderSpec().settings_key()  # 15 is 15.0
    with pytest.raises(UserError, match="data.rendered.seconds='long' is not a number"):
        RenderSpec.from_overrides(["seconds=long"])
    with pytest.raises(UserError, match="--rendered chorales: expected KEY=VALUE"):
        RenderSpec.from_overrides(["chorales"])
    with pytest.raises(UserError, match=r"no setting\(s\) \['chorale'\]"):
        RenderSpec.from_overrides(["chorale=3"])
    with pytest.raises(UserError, match="neither a MIDI file"):
        render_corpus(
            tmp_path, RenderSpec(chorales=0, midi=(str(tmp_path / "nowhere.mid"),), styles=("piano", "organ"), held_out=())
        )


@pytest.mark.slow
def test_a_run_on_rendered_data_gives_a_model_inference_reads(tmp_path: Path, midi_folder: Path) -> None:
    from genre_style.inference import Embedder
    from tests.conftest import run_cli

    overrides = [
        "data=rendered", f"data.source.root={tmp_path / 'rendered'}", f"data.rendered.midi=[{midi_folder}]",
        "data.rendered.chorales=0", "data.rendered.seconds=1.5", "data.rendered.styles=[piano,strings,organ,saxes]",
        "data.rendered.held_out=[saxes]", "data.clips.clips_per_track=1", "data.store.workers=1", "data.progress=false",
        "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "logger.mlflow.log_model=false",
    ]  # fmt: skip
    made = run_cli(overrides, tmp_path / "out")
    assert made.returncode == 0, made.stderr[-3000:]
    (checkpoint,) = (tmp_path / "out").glob("runs/*/artifacts/checkpoints/best.ckpt")
    embedder = Embedder.from_checkpoint(checkpoint)  # the data state filed where inference reads it
    assert embedder.genres == ["organ", "piano", "strings"]
    song = embedder.embed_file(next((tmp_path / "rendered").glob("*/saxes/*.wav")))
    assert song.genre in embedder.genres
