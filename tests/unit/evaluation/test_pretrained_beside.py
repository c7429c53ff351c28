"""Every training run shows frozen musicnn + a linear probe beside the model, on the run's own splits
(evaluation/pretrained_beside.py): the probe's figures, their names, the cache reused by a second run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genre_style.evaluation.pretrained_beside import bracket_suffix, probe_scores
from genre_style.metric_names import PRETRAINED_PROBE_ACC, PRETRAINED_TRACK_ACC, declared, key
from tests.conftest import FAST_RUN, run_cli
from tests.pretrained import needs_musicnn

SUFFIX = "musicnn_msd_musicnn_penultimate"


def _songs(separable: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """30 songs of 3 genres, 5 clips each: vectors that tell the genre (or pure noise), split by song."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), 50)
    tracks = np.repeat(np.arange(30), 5)
    values = rng.normal(size=(150, 8))
    if separable:
        values[np.arange(150), labels] += 4.0
    songs = rng.permutation(30)
    split = {"train": songs[:18], "val": songs[18:24], "test": songs[24:]}
    return values, labels, tracks, {name: np.flatnonzero(np.isin(tracks, s)) for name, s in split.items()}


def test_the_probe_scores_clips_and_songs_of_val_and_test_only():
    values, labels, tracks, indices = _songs(separable=True)
    scores = probe_scores(values, labels, tracks, indices, "x")
    assert set(scores) == {key(s, m, "x") for s in ("val", "test") for m in (PRETRAINED_PROBE_ACC, PRETRAINED_TRACK_ACC)}
    assert min(scores.values()) > 0.9  # genres 4 standard deviations apart
    noise = probe_scores(*_songs(separable=False), "x")
    assert noise[key("test", PRETRAINED_PROBE_ACC, "x")] < 0.7  # nothing to learn: near chance (1/3), not near 1


def test_a_genre_missing_from_train_is_never_predicted():
    values, labels, tracks, indices = _songs(separable=True)
    indices["train"] = indices["train"][labels[indices["train"]] != 2]  # no genre 2 to learn from
    scores = probe_scores(values, labels, tracks, indices, "x")
    test = indices["test"]
    share_2 = float((labels[test] == 2).mean())
    assert scores[key("test", PRETRAINED_PROBE_ACC, "x")] <= 1 - share_2 + 1e-9


def test_the_names_are_declared_metric_names():
    assert bracket_suffix("musicnn MSD_musicnn penultimate") == SUFFIX
    assert bracket_suffix("hear my.module") == "hear_my_module"
    for metric in (PRETRAINED_PROBE_ACC, PRETRAINED_TRACK_ACC):
        assert declared(key("test", metric, SUFFIX))
    assert not declared(key("test", "pretrained_nothing", SUFFIX))


@pytest.mark.slow
@needs_musicnn
def test_a_training_run_shows_frozen_musicnn_beside_the_model_and_a_second_run_reuses_its_outputs(tmp_path):
    args = [*FAST_RUN, "trainer.max_epochs=1", "model=two_layer", "evaluation.pretrained_brackets=[musicnn]"]
    first = run_cli(args, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    said = first.stdout + first.stderr
    assert "clips computed" in said and "beside the model, frozen musicnn MSD_musicnn penultimate" in said
    second = run_cli(args, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    said = second.stdout + second.stderr
    assert "cached outputs reused" in said and "clips computed" not in said
    runs = sorted((tmp_path / "runs").iterdir())
    figures = [json.loads((run / "artifacts/report/final_metrics.json").read_text()) for run in runs]
    names = [key(s, m, SUFFIX) for s in ("val", "test") for m in (PRETRAINED_PROBE_ACC, PRETRAINED_TRACK_ACC)]
    for metric in names:
        assert 0.0 <= figures[0][metric] <= 1.0
        assert figures[0][metric] == figures[1][metric]  # the cached outputs are the computed ones


def test_a_bracket_named_twice_is_refused_and_hear_brackets_are_told_apart_by_their_model_file():
    from genre_style.errors import UserError
    from genre_style.evaluation.pretrained_brackets import parse, parse_all

    with pytest.raises(UserError, match="named twice"):
        parse_all("musicnn,musicnn:MSD_musicnn")  # the same bracket: its figures would overwrite each other
    assert parse("hear:m:runs/a/best.ckpt").name != parse("hear:m:runs/b/other.ckpt").name


def test_a_bracket_that_fails_after_training_is_a_note_and_the_others_figures_stand(tmp_path, caplog):
    from types import SimpleNamespace

    from genre_style.evaluation.analyses import Evaluated
    from genre_style.evaluation.pretrained_beside import pretrained_beside

    values, labels, tracks, indices = _songs(separable=True)
    table = SimpleNamespace(labels=labels, track_index=tracks, track_ids=[f"s{i}" for i in range(30)])
    data = SimpleNamespace(table=table, indices=indices, root=tmp_path, spec=None, cache_dir=None, cache_key="in-memory")
    evaluated = Evaluated(None, {}, {}, ["a", "b", "c"], table.track_ids, tmp_path, "t", data)
    with caplog.at_level("WARNING"):
        assert pretrained_beside(evaluated, ["hear:no_such_module_here"]) == {}
    assert "hear no_such_module_here bracket is left out" in caplog.text and "cannot be imported" in caplog.text


def test_the_config_check_refuses_a_hear_module_that_is_not_installed(tmp_path):
    from hydra import compose, initialize_config_dir

    from genre_style.config_checks import validate_config
    from genre_style.errors import UserError
    from tests.conftest import REPO

    overrides = [f"paths.output_root={tmp_path}", f"paths.output_dir={tmp_path}/run", "data=synthetic"]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*overrides, "evaluation.pretrained_brackets=[hear:no_such_module_here]"])
    with pytest.raises(UserError, match="the HEAR module no_such_module_here is not installed"):
        validate_config(cfg)
