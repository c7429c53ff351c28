"""--method convert: a converter trained on rendered pairs rebuilds one rendering from another's content and a code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genre_style.errors import UserError
from tests.transfer_extra import require_transfer_extra

require_transfer_extra()

from genre_style.data.rendered import RenderSpec, render_corpus  # noqa: E402
from genre_style.style_transfer import converter as conv  # noqa: E402
from tests.conftest import run_cli  # noqa: E402


def _midi(path: Path, root: int) -> Path:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    for program, offset in ((0, 0), (32, -24)):
        instrument = pretty_midi.Instrument(program=program)
        for i, step in enumerate((0, 4, 7, 12, 7, 4, 0, 7, 5, 9)):
            instrument.notes.append(pretty_midi.Note(velocity=90, pitch=root + step + offset, start=0.3 * i, end=0.3 * i + 0.25))
        midi.instruments.append(instrument)
    midi.write(str(path))
    return path


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A corpus of 8 short tunes in 3 training styles (+1 held out), and experiment=best's DSAE (untrained) as the
    style encoder: its codes still tell styles apart (random conv features of different spectra differ)."""
    from genre_style.inference import Embedder
    from tests import checkpoints

    folder = tmp_path_factory.mktemp("midi")
    for i in range(8):
        _midi(folder / f"tune{i}.mid", 55 + i)
    spec = RenderSpec(
        chorales=0, midi=(str(folder),), seconds=3.0, styles=("piano", "strings", "organ", "saxes"), held_out=("saxes",),
        split_sizes=(0.5, 0.25, 0.25),
    )  # fmt: skip
    out = tmp_path_factory.mktemp("converter")
    corpus = render_corpus(out / "rendered", spec, progress=False, workers=1)
    model, clip_spec = checkpoints.from_experiment("best", out / "model")
    encoder = checkpoints.save(model, clip_spec, out / "encoder.ckpt")
    return {"corpus": corpus, "encoder": encoder, "embedder": Embedder.from_checkpoint(encoder), "out": out, "spec": spec}


@pytest.mark.slow
def test_a_converter_learns_to_rebuild_the_target_rendering(setting: dict) -> None:
    model, history = conv.train_converter(setting["embedder"], setting["corpus"], epochs=12, channels=32, seed=0)
    assert len(history) == 12
    first, last = history[0], history[-1]
    assert last["train_mse"] < 0.7 * first["train_mse"]
    # on val pieces it never trained on, closer to the true target than the content itself is
    assert last["val_mse"] < last["val_mse_copy_content"], history
    assert set(model.settings["pieces"]) == set(setting["corpus"].split_pieces("train"))
    assert "saxes" not in model.settings["styles"] and model.settings["corpus"] == setting["corpus"].key
    path = model.save(setting["out"] / "converter.pt")
    loaded = conv.ConverterModel.load(path)
    maps = np.random.default_rng(0).normal(-40, 10, size=(2, model.settings["n_mels"], 20)).astype(np.float32)
    code = np.ones(model.settings["style_dim"], dtype=np.float32)
    np.testing.assert_allclose(loaded.convert(maps, code), model.convert(maps, code), rtol=1e-5, atol=1e-4)
    setting["converter"] = path


@pytest.mark.slow
def test_convert_through_the_transfer_cli(setting: dict, tmp_path: Path) -> None:
    if "converter" not in setting:
        pytest.skip("needs the converter the training test writes")
    corpus = setting["corpus"]
    piece = corpus.split_pieces("test")[0]
    other = next(p for p in corpus.split_pieces("val"))
    out = tmp_path / "out.wav"
    args = [str(corpus.path("piano", piece)), str(corpus.path("organ", other)), "--model", str(setting["encoder"])]
    made = run_cli(
        [*args, "--method", "convert", "--converter", str(setting["converter"]), "--out", str(out), "--no-log"],
        tmp_path,
        module="genre_style.transfer",
    )
    assert made.returncode == 0, made.stderr[-3000:]
    import soundfile as sf

    audio, rate = sf.read(out)
    assert rate == 22050 and len(audio) == int(3.0 * 22050) and np.abs(audio).max() > 1e-3
    missing = run_cli([*args, "--method", "convert", "--no-log", "--out", str(out)], tmp_path, module="genre_style.transfer")
    assert missing.returncode == 2 and "--method convert needs --converter FILE" in missing.stderr


@pytest.mark.slow
def test_the_rendered_benchmark_scores_the_converter_on_its_own_corpus_only(setting: dict, tmp_path: Path) -> None:
    if "converter" not in setting:
        pytest.skip("needs the converter the training test writes")
    spec = setting["spec"]
    same = [f"midi=[{spec.midi[0]}]", "chorales=0", "seconds=3", "styles=[piano,strings,organ,saxes]", "held_out=[saxes]"]
    same.append("split_sizes=[0.5,0.25,0.25]")  # the fixture's data.rendered settings, as a user repeats them
    base = ["--root", str(setting["out"] / "rendered"), "--model", str(setting["encoder"]), "--judge", str(setting["encoder"])]
    base += ["--converter", str(setting["converter"]), "--pairs", "2", "--only", "copy content", "--only", "convert"]
    out = tmp_path / "bench"
    made = run_cli(
        [*base, "--out", str(out), *(a for r in same for a in ("--rendered", r))],
        tmp_path,
        module="benchmarks.bench_transfer_rendered",
    )
    assert made.returncode == 0, made.stderr[-3000:]
    assert "| convert - copy content |" in (out / "table.md").read_text() and (out / "index.html").is_file()
    assert len(list((out / "convert").glob("*.wav"))) == 2
    # --reuse takes only outputs made by the same corpus, model and converter
    mixed = [a for a in base if a not in ("--converter", str(setting["converter"]))]
    reused = run_cli(
        [*mixed, "--out", str(out), "--reuse", *(a for r in same for a in ("--rendered", r))],
        tmp_path,
        module="benchmarks.bench_transfer_rendered",
    )
    assert reused.returncode == 2 and f"--reuse: the outputs under {out} were made with" in reused.stderr
    # settings of another corpus (here: no held-out style) are refused before any work: nothing rendered, nothing made
    # (a converter trained on another rendered corpus: test_a_converter_is_scored_only_on_the_corpus_it_was_trained_on)
    described = sorted((setting["out"] / "rendered").rglob("corpus-*.json"))
    other = [*(a for r in same[:-2] for a in ("--rendered", r)), "--rendered", "held_out=[]", "--rendered", same[-1]]
    refused = run_cli([*base, "--out", str(tmp_path / "other"), *other], tmp_path, module="benchmarks.bench_transfer_rendered")
    assert refused.returncode == 2 and "no complete rendered corpus with these settings" in refused.stderr
    assert not (tmp_path / "other").exists() and sorted((setting["out"] / "rendered").rglob("corpus-*.json")) == described


def test_a_file_that_is_no_converter_says_so(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        conv.ConverterModel.load(tmp_path / "nowhere.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a converter")
    with pytest.raises(UserError, match="is not a converter file"):
        conv.ConverterModel.load(tmp_path / "junk.pt")


def test_the_network_keeps_the_maps_shape_and_reads_the_code() -> None:
    import torch

    network = conv._network(16, 8, 12)
    x = torch.zeros(3, 16, 25)
    a, b = network(x, torch.zeros(3, 8)), network(x, torch.ones(3, 8))
    assert a.shape == (3, 16, 25) and not torch.allclose(a, b)


def test_a_converter_is_scored_only_on_the_corpus_it_was_trained_on_never_on_its_test_pieces(tmp_path: Path) -> None:
    from genre_style.data.rendered import RenderedCorpus

    pieces = {"a": "train", "b": "train", "c": "val", "d": "test"}
    corpus = RenderedCorpus(tmp_path, pieces, ("piano", "organ", "saxes"), ("saxes",), tmp_path / "m.csv", 22050, "sr/corpus-1")
    mean, std = np.zeros((16, 1), np.float32), np.ones((16, 1), np.float32)

    def converter(**settings: object) -> conv.ConverterModel:
        return conv.ConverterModel(
            conv._network(16, 8, 12), mean, std, {"pieces": ["a", "b"], "styles": ["piano", "organ"], **settings}
        )

    converter(corpus="sr/corpus-1").check_corpus(corpus)
    converter().check_corpus(corpus)  # a file written before the corpus was recorded: its pieces and styles still checked
    with pytest.raises(UserError, match="trained on the rendered corpus sr/corpus-2, not on sr/corpus-1"):
        converter(corpus="sr/corpus-2").check_corpus(corpus)
    with pytest.raises(UserError, match=r"trained on \['d', 'saxes'\]: val/test pieces or held-out styles"):
        converter(pieces=["a", "d"], styles=["piano", "saxes"]).check_corpus(corpus)
