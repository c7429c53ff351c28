"""`python -m genre_style.predict` as a user runs it: a header, top-k genres, CSV or JSON, skipped files said once,
exit code 2 when nothing could be read, and a model without a classifier refused (issue #41 item 2, issue #43)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from genre_style.data.audio import ClipSpec
from genre_style.loading import load_model
from genre_style.predict import main
from tests.checkpoints import GENRES, build, save
from tests.conftest import run_cli, write_wav


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {
        "dsae": save(build("dsae"), ClipSpec(), folder / "dsae.ckpt"),
        "autoencoder": save(build("autoencoder"), ClipSpec(), folder / "ae.ckpt"),
    }


@pytest.fixture
def music(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "music"
    write_wav(folder / "a.wav", 0.1 * rng.standard_normal(22050 * 3))
    write_wav(folder / "sub" / "b.wav", 0.1 * rng.standard_normal((48000 * 2, 2)), 48000)  # resampled, mixed down
    return folder


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_folder_gives_a_header_and_each_files_top_genres_as_the_python_api_does(models, music, capsys):
    code, out, err = _run([models["dsae"], music, "--top-k", "4"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["path", "genre_1", "prob_1", "genre_2", "prob_2", "genre_3", "prob_3", "genre_4", "prob_4"]
    assert [r["path"] for r in rows] == [str(music / "a.wav"), str(music / "sub" / "b.wav")]
    model = load_model(models["dsae"])
    for row in rows:
        probs = [float(row[f"prob_{i}"]) for i in range(1, 5)]
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=1e-3)
        assert sorted(row[f"genre_{i}"] for i in range(1, 5)) == sorted(GENRES)
        song = model.embed_file(row["path"])
        assert row["genre_1"] == song.genre and probs[0] == pytest.approx(float(song.probabilities.max()), abs=1e-4)


def test_json_lists_each_files_genres_with_their_probabilities(models, music, capsys):
    code, out, err = _run([models["dsae"], music / "a.wav", "--format", "json", "--top-k", "2"], capsys)
    assert code == 0, err
    (song,) = json.loads(out)
    assert song["path"] == str(music / "a.wav") and [set(g) for g in song["genres"]] == [{"genre", "probability"}] * 2
    assert song["genres"][0]["probability"] >= song["genres"][1]["probability"]


def test_unreadable_files_are_each_said_once_and_summed_up_and_the_rest_predicted(models, music, capsys):
    (music / "broken.wav").write_text("not audio")
    notes = music.parent / "notes.txt"
    notes.write_text("a text file")
    code, out, err = _run([models["dsae"], music, notes], capsys)
    assert code == 0, err
    assert [r["path"] for r in csv.DictReader(io.StringIO(out))] == [str(music / "a.wav"), str(music / "sub" / "b.wav")]
    lines = err.strip().splitlines()
    assert len(lines) == 3, err  # one line per skipped file, one summary
    assert lines[0] == f"genre-style: skipped {music / 'broken.wav'}: unreadable audio (Format not recognised)"
    assert lines[1].startswith(f"genre-style: skipped {notes}: not an audio file") and "EOFError" not in lines[1]
    assert lines[2] == f"genre-style: skipped 2 of 4 file(s): {music / 'broken.wav'}, {notes}"


def test_nothing_readable_exits_2_with_nothing_on_stdout(models, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("a text file")
    for fmt in ("csv", "json"):
        code, out, err = _run([models["dsae"], notes, "--format", fmt], capsys)
        assert code == 2 and out == "" and "none of the 1 input file(s) could be read" in err, err
        assert "Traceback" not in err


def test_a_model_without_a_classifier_is_refused_in_one_line(models, music, capsys):
    code, out, err = _run([models["autoencoder"], music], capsys)
    assert code == 2 and out == "" and "has no classifier" in err and "genre_style.embed" in err


@pytest.mark.parametrize("argv, needle", [(["--top-k", "0"], "--top-k 0"), (["--device", "tpu9"], "tpu9")])
def test_bad_options_are_one_line(models, music, capsys, argv, needle):
    code, _, err = _run([models["dsae"], music, *argv], capsys)
    assert code == 2 and needle in err and "Traceback" not in err


@pytest.mark.slow
def test_a_text_file_is_one_clear_line_with_no_library_warnings(models, tmp_path):
    """The issue's case: a .txt input leaked librosa's five lines of warnings and the reason "EOFError: "."""
    notes = tmp_path / "notes.txt"
    notes.write_text("a text file")
    result = run_cli([str(models["dsae"]), str(notes)], tmp_path, module="genre_style.predict")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"genre-style: skipped {notes}: not an audio file genre-style can decode (Format not recognised): use wav, flac, mp3 or ogg",
        "genre-style: error: none of the 1 input file(s) could be read (the reasons are above)",
        "  fix: pass audio files (wav, flac, mp3, ogg, au) or folders that hold them",
    ], result.stderr
