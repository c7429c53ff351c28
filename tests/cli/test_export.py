"""`python -m genre_style.export MODEL --onnx out.onnx` and `embed --backend onnx` (issue #41 item 3): the exported graph
gives PyTorch's numbers to within 1e-4 (max absolute difference, measured ~2e-7) on the demo's model (an MLP DSAE on
raw_pool vectors) and experiment=best's (a log-mel CNN DSAE), through the whole pipeline from audio."""

from __future__ import annotations

import csv
import io

import numpy as np
import onnxruntime  # noqa: F401 - the [onnx] extra, in .[dev]: missing, these tests fail rather than skip
import pytest

from genre_style.batch import TorchRunner, embed_stream
from genre_style.embed import main as embed
from genre_style.export import main as export
from genre_style.loading import load_model
from genre_style.onnx_backend import OnnxRunner
from genre_style.predict import main as predict
from tests.checkpoints import build, from_experiment, save
from tests.conftest import write_wav

TOLERANCE = 1e-4  # the bar for parity with PyTorch


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """experiment=demo's and experiment=best's models as checkpoints, each exported by the CLI."""
    folder = tmp_path_factory.mktemp("exported")
    models = {}
    for name in ("demo", "best"):
        model, spec = from_experiment(name, folder / name)
        checkpoint = save(model, spec, folder / f"{name}.ckpt")
        assert export([str(checkpoint), "--onnx", str(folder / f"{name}.onnx")]) == 0
        models[name] = (checkpoint, folder / f"{name}.onnx")
    return models


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    rng = np.random.default_rng(0)
    t = np.arange(22050 * 4) / 22050
    signal = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2 + 0.05 * rng.standard_normal(len(t))
    return write_wav(tmp_path_factory.mktemp("song") / "song.wav", signal, 44100 // 2)


@pytest.mark.parametrize("name", ["demo", "best"])
def test_onnx_gives_pytorchs_embeddings_and_logits_from_audio(exported, song, name):
    checkpoint, onnx_file = exported[name]
    torch_runner, onnx_runner = TorchRunner(load_model(checkpoint), "cpu"), OnnxRunner(onnx_file, "cpu")
    assert onnx_runner.genres == torch_runner.genres and onnx_runner.layer_names == ["embedding", "logits"]
    want = embed_stream(torch_runner, song, hop_s=0.25)
    got = embed_stream(onnx_runner, song, hop_s=0.25)
    assert len(want.start_s) == 13 and np.array_equal(got.start_s, want.start_s)
    assert np.abs(got.values - want.values).max() <= TOLERANCE
    assert np.abs(got.logits - want.logits).max() <= TOLERANCE


def test_the_export_command_states_the_shapes_and_the_difference(exported, tmp_path, capsys):
    checkpoint, _ = exported["best"]
    assert export([str(checkpoint), "--onnx", str(tmp_path / "m.onnx")]) == 0
    said = capsys.readouterr().out
    assert "features float32 [batch, 64, 79] (logmel, not standardised) -> embedding, logits" in said
    assert float(said.rsplit("max abs difference ", 1)[1]) <= TOLERANCE


def test_embed_and_predict_run_the_onnx_file(exported, song, tmp_path, capsys):
    checkpoint, onnx_file = exported["demo"]
    assert embed([str(onnx_file), str(song), "--backend", "onnx", "--hop", "0.5", "--out-dir", str(tmp_path / "o")]) == 0
    assert embed([str(checkpoint), str(song), "--hop", "0.5", "--out-dir", str(tmp_path / "t")]) == 0
    got, want = np.load(tmp_path / "o" / "song.npy"), np.load(tmp_path / "t" / "song.npy")
    assert got.dtype == np.float32 and np.abs(got - want).max() <= TOLERANCE
    capsys.readouterr()
    assert predict([str(onnx_file), str(song)]) == 0 and predict([str(checkpoint), str(song)]) == 0
    onnx_rows, torch_rows = [list(csv.reader(io.StringIO(block))) for block in capsys.readouterr().out.split("path,")[1:]]
    assert onnx_rows[1][1] == torch_rows[1][1]  # the same top genre


def test_an_autoencoder_exports_its_embedding_only_and_predict_refuses_it(song, tmp_path, capsys):
    from genre_style.data.audio import ClipSpec

    checkpoint = save(build("autoencoder"), ClipSpec(), tmp_path / "ae.ckpt")
    assert export([str(checkpoint), "--onnx", str(tmp_path / "ae.onnx")]) == 0
    assert OnnxRunner(tmp_path / "ae.onnx", "cpu").layer_names == ["embedding"]
    assert predict([str(tmp_path / "ae.onnx"), str(song)]) == 2 and "has no classifier" in capsys.readouterr().err


def test_a_file_that_is_not_a_genre_style_onnx_model_is_one_line(song, tmp_path, capsys):
    fake = tmp_path / "model.onnx"
    fake.write_text("not a model")
    assert embed([str(fake), str(song), "--backend", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "cannot read ONNX model" in err and "genre_style.export" in err and "Traceback" not in err


@pytest.mark.slow  # in-process, but over 1.5 s: the full suite runs it, `make test-fast` leaves it out
def test_a_model_that_loops_over_its_batch_exports_for_one_clip_a_call(tmp_path, capsys):
    """musicnn's fixed front-end runs a clip at a time (a Python loop the tracer bakes in): exported at batch 1 and fed
    clip by clip, with PyTorch's numbers."""
    import numpy as np

    from genre_style.data.audio import ClipSpec
    from genre_style.inference import standardize

    spec = ClipSpec(features="musicnn_mel", sample_rate=16000, segment_samples=48000, hop_samples=48000)
    encoder = {"_target_": "genre_style.models.pretrained.musicnn.MusicnnEncoder", "pretrained": False}
    checkpoint = save(build("dsae", spec, encoder=encoder), spec, tmp_path / "musicnn.ckpt")
    assert export([str(checkpoint), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert "features float32 [1, 96, 188]" in capsys.readouterr().out
    runner = OnnxRunner(tmp_path / "m.onnx", "cpu")
    assert runner.one_clip_a_call
    x = np.random.default_rng(0).standard_normal((3, 96, 188)).astype(np.float32)
    model = load_model(checkpoint)  # its standardisation is inside the graph: PyTorch gets the standardised features
    embedding, _ = model.outputs(standardize(x.copy(), model.preprocessing.mean, model.preprocessing.std))
    assert np.abs(runner.run(x, ["embedding"])["embedding"] - embedding).max() <= TOLERANCE
