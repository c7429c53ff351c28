"""`python -m genre_style.embed` as openl3's users expect it (issue #41 item 1): files, folders or globs in; a `.npy` and
a timestamps file per input, or one table; overlapping windows; any layer; memory flat on long files."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from genre_style.batch import TorchRunner, embed_stream
from genre_style.data.audio import ClipSpec, load_mono, segment
from genre_style.data.stream import windows
from genre_style.embed import main
from genre_style.loading import load_model
from tests.checkpoints import LOGMEL, LOGMEL_CNN, build, save
from tests.conftest import write_wav

SR = 22050


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    cnn = build("dsae", LOGMEL, encoder=LOGMEL_CNN, recon_reduction="mean", decoder_sizes=[256])
    return {"mlp": save(build("dsae"), ClipSpec(), folder / "mlp.ckpt"), "cnn": save(cnn, LOGMEL, folder / "cnn.ckpt")}


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    """Ten 3-s songs, one of them in a sub-folder."""
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("songs")
    for i in range(10):
        write_wav(folder / ("sub" if i == 9 else "") / f"song{i}.wav", 0.1 * rng.standard_normal(SR * 3))
    return folder


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_folder_of_ten_songs_with_a_half_second_hop_writes_twenty_files(models, songs, tmp_path, capsys):
    """The issue's done-when: one .npy and one timestamps file per song, the timestamps 0.5 s apart."""
    out = tmp_path / "emb"
    code, said, err = _run([models["mlp"], songs, "--out-dir", out, "--hop", "0.5"], capsys)
    assert code == 0, err
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert len(files) == 20 and "sub/song9.npy" in files and "sub/song9_timestamps.npy" in files
    windows_per_song = (3 * SR - 20000) // (SR // 2) + 1  # 0.907-s windows every 0.5 s over 3 s: 5
    for name in [f"song{i}" for i in range(9)] + ["sub/song9"]:
        values, starts = np.load(out / f"{name}.npy"), np.load(out / f"{name}_timestamps.npy")
        assert values.dtype == np.float32 and values.shape == (windows_per_song, 64)
        assert starts[0] == 0.0
        np.testing.assert_allclose(np.diff(starts), 0.5)
    assert "50 windows (embedding) from 10 file(s)" in said


@pytest.mark.slow  # in-process, but over 1.5 s: the full suite runs it, `make test-fast` leaves it out
def test_streamed_windows_at_the_models_hop_are_the_clips_embed_file_cuts(models, tmp_path):
    rng = np.random.default_rng(1)
    native = write_wav(tmp_path / "a.wav", 0.1 * rng.standard_normal(SR * 4))
    resampled = write_wav(tmp_path / "b.wav", 0.1 * rng.standard_normal((48000 * 3, 2)), 48000)  # mixed down, resampled
    for kind in ("mlp", "cnn"):
        embedder = load_model(models[kind])
        runner = TorchRunner(embedder, "cpu")
        for path in (native, resampled):
            song, streamed = embedder.embed_file(path), embed_stream(runner, path, batch_size=2)
            np.testing.assert_allclose(streamed.values, song.embeddings, atol=1e-5)
            np.testing.assert_allclose(streamed.logits, song.logits, atol=1e-5)
            np.testing.assert_allclose(streamed.start_s, song.start_s)


def test_windows_that_straddle_the_blocks_read_are_the_windows_of_the_whole_file(tmp_path):
    signal = np.random.default_rng(2).uniform(-0.5, 0.5, SR * 5).astype(np.float32)
    path = write_wav(tmp_path / "a.wav", signal)
    whole = load_mono(path, SR)
    hop = 7000
    starts, got = zip(*windows(path, SR, 20000, hop, batch=3, block_seconds=0.3))  # blocks far shorter than a window
    np.testing.assert_array_equal(np.concatenate(got), segment(whole, 20000, hop, 10**9))
    np.testing.assert_array_equal(np.concatenate(starts), np.arange(len(np.concatenate(got))) * hop)


@pytest.mark.slow  # in-process, but over 1.5 s: the full suite runs it, `make test-fast` leaves it out
def test_memory_stays_flat_on_a_long_file(tmp_path):
    """Ten minutes of 44.1-kHz stereo (~200 MB as float32 after decoding) streamed with a peak of a few MB."""
    seconds, rate = 600, 44100
    path = tmp_path / "long.wav"
    import soundfile as sf

    with sf.SoundFile(path, "w", rate, 2, "PCM_16") as f:
        block = (0.1 * np.random.default_rng(3).standard_normal((rate * 10, 2))).astype(np.float32)
        for _ in range(seconds // 10):
            f.write(block)
    tracemalloc.start()
    try:
        count = sum(len(starts) for starts, _ in windows(path, SR, 20000, SR, batch=64, block_seconds=10))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == (seconds * SR - 20000) // SR + 1
    assert peak < 40e6, f"peak {peak / 1e6:.0f} MB"  # a whole-file decode holds >= 2 * 600 * 44100 * 4 B = 212 MB


def test_any_layer_and_a_table_of_float32_values(models, songs, tmp_path, capsys):
    song = songs / "song0.wav"
    code, _, err = _run([models["cnn"], song, "--layer", "encoder.features.0", "--out-dir", tmp_path / "block"], capsys)
    assert code == 0, err
    assert np.load(tmp_path / "block" / "song0.npy").shape == (3, 16)  # the first conv block's 16 channels, pooled
    code, _, err = _run([models["cnn"], song, "--layer", "logits", "--out", tmp_path / "t.csv", "--hop", "0.25"], capsys)
    assert code == 0, err
    table = pd.read_csv(tmp_path / "t.csv")
    assert [c for c in table.columns if c.startswith("emb_")] == [f"emb_{j:03d}" for j in range(4)]
    np.testing.assert_allclose(np.diff(table.start_s), 0.25, atol=1e-3)
    code, _, err = _run([models["mlp"], song, "--out", tmp_path / "t.parquet"], capsys)
    assert code == 0, err
    emb = pd.read_parquet(tmp_path / "t.parquet").filter(like="emb_")
    assert set(emb.dtypes) == {np.dtype("float32")} and emb.shape == (3, 64)
    assert (tmp_path / "t_tracks.parquet").exists()


def test_a_glob_pattern_names_files(models, songs, tmp_path, capsys):
    code, said, err = _run([models["mlp"], f"{songs}/**/song[0-2].wav", "--out-dir", tmp_path / "g"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "g").glob("*.npy")) == [
        f"song{i}{suffix}.npy" for i in range(3) for suffix in ("", "_timestamps")
    ]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--layer", "encoder.nope"], "choose --layer from: embedding, logits, encoder.net"),
        (["--hop", "0"], "--hop 0.0 must be a positive"),
        (["--batch-size", "0"], "--batch-size 0"),
        (["--device", "tpu9"], "unknown device 'tpu9'"),
        (["--backend", "onnx"], "ONNX"),
    ],
)
def test_bad_options_are_one_line(models, songs, tmp_path, capsys, argv, needle):
    code, _, err = _run([models["mlp"], songs / "song0.wav", "--out-dir", tmp_path, *argv], capsys)
    assert code == 2 and needle in err and "Traceback" not in err, err


def test_two_inputs_that_would_write_one_file_are_refused(models, songs, tmp_path, capsys):
    other = write_wav(tmp_path / "elsewhere" / "song0.wav", np.zeros(SR * 2))
    code, _, err = _run([models["mlp"], songs / "song0.wav", other, "--out-dir", tmp_path / "o"], capsys)
    assert code == 2 and "would both write" in err and not (tmp_path / "o").exists()


def test_a_pretrained_backbones_layers_can_be_read(tmp_path, capsys):
    """musicnn's architecture (randomly initialised: no weights to fetch) inside a DSAE: its mid-end blocks and dense
    layer are `encoder.backbone.*` layers; a container of blocks is not one."""
    spec = ClipSpec(features="musicnn_mel", sample_rate=16000, segment_samples=48000, hop_samples=48000)
    encoder = {"_target_": "genre_style.models.pretrained.musicnn.MusicnnEncoder", "pretrained": False}
    checkpoint = save(build("dsae", spec, encoder=encoder), spec, tmp_path / "musicnn.ckpt")
    song = write_wav(tmp_path / "song.wav", 0.1 * np.random.default_rng(4).standard_normal(SR * 7))
    runner = TorchRunner(load_model(checkpoint), "cpu")
    assert "encoder.backbone.midend" not in runner.layer_names  # a ModuleList: never called itself
    for layer, width in (("encoder.backbone.midend.1", 64), ("encoder.backbone.backend.dense", 200)):
        code = main([str(checkpoint), str(song), "--layer", layer, "--hop", "1.5", "--out-dir", str(tmp_path / layer)])
        assert code == 0, capsys.readouterr().err
        assert np.load(tmp_path / layer / "song.npy").shape == (3, width)  # 3-s windows every 1.5 s over 7 s


def test_a_terminal_sees_a_progress_bar_over_the_files(models, songs, tmp_path, monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main([str(models["mlp"]), str(songs), "--out-dir", str(tmp_path / "o")]) == 0
    assert "10/10" in terminal.getvalue() and "file" in terminal.getvalue()
