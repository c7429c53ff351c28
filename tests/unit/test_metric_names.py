"""Metric names are defined once (genre_style/metric_names.py): every name the report and the run's description read
is one the evaluations declare, every figure the evaluations write is declared, and evaluations are a registry (a new
one registered here is run, takes its setting, and can be switched off)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from genre_style import metric_names
from genre_style.errors import UserError
from genre_style.evaluation import analyses
from genre_style.evaluation import evaluate as _registered  # noqa: F401 - registers the built-in analyses
from genre_style.evaluation.analyses import ANALYSES, Evaluated, analysis, run_analyses
from genre_style.reporting.sections import REPEATED_METRICS
from genre_style.tracking.run_record import DESCRIBED

GENRES = ["a", "b", "c"]


@pytest.fixture
def registry():
    """Leave the registry as it was."""
    saved = dict(ANALYSES)
    yield
    ANALYSES.clear()
    ANALYSES.update(saved)


def _evaluated(tmp_path, has_classifier: bool = True) -> Evaluated:
    """Outputs of a small classifier on three splits: 6 songs of 4 clips each, an 8-d embedding."""
    rng = np.random.default_rng(0)
    outputs, raw = {}, {}
    for split in ("train", "val", "test"):
        y = np.repeat(np.arange(6) % 3, 4)
        embedding = rng.normal(size=(24, 8)) + y[:, None]
        outputs[split] = {"y": y, "track": np.repeat(np.arange(6), 4), "embedding": embedding, "logits": embedding[:, :3]}
        raw[split] = rng.normal(size=(24, 5)) + y[:, None]
    model = SimpleNamespace(has_classifier=has_classifier, has_decoder=False)
    # The clip table the splits come from (pretrained_beside.py reads it): 18 songs of 4 clips, 6 songs a split.
    labels, tracks = np.concatenate([outputs[s]["y"] for s in outputs]), np.repeat(np.arange(18), 4)
    table = SimpleNamespace(labels=labels, track_index=tracks, track_ids=[f"s{i}" for i in range(18)])
    indices = {split: np.arange(24 * i, 24 * (i + 1)) for i, split in enumerate(outputs)}
    data = SimpleNamespace(table=table, indices=indices, root=tmp_path, spec=None, cache_dir=None, cache_key="in-memory")
    return Evaluated(model, outputs, raw, GENRES, [f"s{i}" for i in range(6)], tmp_path, "test", data)


def test_every_name_the_report_and_the_description_read_is_declared():
    assert all(metric_names.declared(name) for name in REPEATED_METRICS), REPEATED_METRICS
    assert all(metric_names.declared(f"test/{name}") for name in DESCRIBED), sorted(DESCRIBED)
    assert not metric_names.declared("test/knn_accuracy_hidden") and not metric_names.declared("test/track_accuracy")


def test_every_figure_the_analyses_write_is_declared_and_each_declared_one_is_written(tmp_path, monkeypatch):
    from genre_style.evaluation import pretrained_brackets

    def bracket_embeddings(brackets, root, table, *_):  # a pretrained network's outputs: vectors that tell the genre
        values = np.random.default_rng(1).normal(size=(len(table.labels), 4)) + table.labels[:, None]
        return [(b.name, table, values) for b in brackets], []

    monkeypatch.setattr(pretrained_brackets, "bracket_embeddings", bracket_embeddings)
    metrics = run_analyses(_evaluated(tmp_path), {"knn_k": 3, "pretrained_brackets": ["musicnn"]})
    assert metrics and all(metric_names.declared(name) for name in metrics), sorted(metrics)
    written = {name.split("/", 1)[1] for name in metrics}
    for entry in ANALYSES.values():
        for declared in entry.metrics:
            assert any(w == declared or w.startswith(declared + "_") for w in written), (entry.name, declared)
    assert (tmp_path / "report/song_predictions.csv").exists()


def test_the_models_test_metrics_are_declared():
    from genre_style.models.base import GenreModel

    collection = GenreModel._test_metrics(3, GENRES)
    collection.update(torch.tensor([0, 1, 2, 1]), torch.tensor([0, 1, 2, 2]))
    names = [f"test/{name}" for name in collection.compute()]
    assert "test/f1_macro" in names and "test/precision_b" in names
    assert all(metric_names.declared(name) for name in names), names


def test_an_evaluation_registered_here_is_run_with_its_setting_and_can_be_switched_off(tmp_path, registry):
    @analysis("centroid_spread", metrics=("spread",), settings=("spread_scale",), switch="centroid_spread")
    def spread(e: Evaluated, spread_scale: float = 1.0) -> dict[str, float]:
        codes, y = e.outputs["test"]["embedding"], e.outputs["test"]["y"]
        centroids = np.stack([codes[y == g].mean(axis=0) for g in np.unique(y)])
        return {"test/spread": spread_scale * float(np.linalg.norm(centroids - centroids.mean(axis=0), axis=1).mean())}

    evaluated = _evaluated(tmp_path, has_classifier=False)
    base = {"embedding_metrics": False, "disentanglement": False}
    once = run_analyses(evaluated, {**base, "spread_scale": 1.0})
    assert list(once) == ["test/spread"] and once["test/spread"] > 0  # no classifier: no song accuracy
    assert run_analyses(evaluated, {**base, "spread_scale": 2.0})["test/spread"] == pytest.approx(2 * once["test/spread"])
    assert run_analyses(evaluated, {**base, "centroid_spread": False}) == {}
    with pytest.raises(UserError, match="evaluation.spred_scale is not a setting of any evaluation"):
        run_analyses(evaluated, {"spred_scale": 1.0})
    assert "spread_scale" in analyses.known_settings()
