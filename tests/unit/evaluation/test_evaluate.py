"""The after-training evaluation (genre_style/evaluation/evaluate.py) in process, on a tiny model fitted to an in-memory
clip table: the figures each registered analysis declares and no others, switched off when asked, and reports on disk
that agree with the returned figures (what MLflow and the report get is what the run folder holds).

`evaluate` draws about a dozen plots (~0.5 s each here): the tests that call it are `slow`."""

from __future__ import annotations

import csv
import json
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from genre_style import metric_names
from genre_style.data.datamodule import GenreDataModule
from genre_style.evaluation.evaluate import embedding_space_name, evaluate, final_metrics, predict_split
from genre_style.models.dsae import DeepSoftmaxAutoencoder
from genre_style.models.encoders import mlp_encoder
from genre_style.models.two_layer import TwoLayerNet
from tests.conftest import labelled_clips, quiet_trainer

GENRES = ["classical", "jazz", "pop", "metal"]
SPLITS = ("train", "val", "test")
FULL = {"embedding_metrics": True, "knn_k": 3, "disentanglement": True, "interpolation_steps": 4, "pretrained_brackets": []}
LEAN = {"embedding_metrics": False, "disentanglement": False, "interpolation_steps": 0, "pretrained_brackets": []}
# What MetricHistory gives evaluate: one row per epoch.
HISTORY = [
    {"epoch": 0, "train/loss": 2.0, "val/loss": 1.2, "val/acc": 0.4},
    {"epoch": 1, "train/loss": 1.1, "val/loss": 0.9, "val/acc": 0.6},
]


def _data() -> GenreDataModule:
    dm = GenreDataModule.from_table(
        labelled_clips(24, 4, (12,), GENRES), split={"mode": "track"}, loader={"batch_size": 16}, seed=0
    )
    dm.setup("fit")
    return dm


def _fitted(cls: type, dm: GenreDataModule) -> tuple[pl.Trainer, Any]:
    pl.seed_everything(0, verbose=False)
    model = cls(encoder=mlp_encoder([16]), embedding_dim=6, input_shape=dm.input_shape, num_classes=4, class_names=GENRES)
    trainer = quiet_trainer(2)
    trainer.fit(model, datamodule=dm)
    return trainer, model


def _keys(names: tuple[str, ...], splits: tuple[str, ...], spaces: tuple[str, ...] = ()) -> set[str]:
    return {f"{s}/{n}_{space}" if space else f"{s}/{n}" for s in splits for n in names for space in (spaces or ("",))}


@pytest.fixture(scope="module")
def dsae(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A DSAE fitted for two epochs and evaluated with every analysis on."""
    dm = _data()
    trainer, model = _fitted(DeepSoftmaxAutoencoder, dm)
    out = tmp_path_factory.mktemp("dsae")
    metrics = evaluate(trainer, model, dm, HISTORY, out, "DSAE", best_epoch=1, **FULL)
    return {"dm": dm, "trainer": trainer, "model": model, "out": out, "metrics": metrics}


# --- without plots: fast --------------------------------------------------------------------------------------


def test_final_metrics_are_accuracy_and_reconstruction_per_split():
    y = np.array([0, 1, 2, 3])
    logits = np.eye(4)[[0, 1, 2, 0]]  # three of four right
    outputs = {"val": {"logits": logits, "y": y, "reconstruction_error": np.array([1.0, 2.0, 3.0, 6.0])}}
    assert final_metrics(outputs, has_classifier=True) == {"val/acc": 0.75, "val/recon": 3.0}
    assert final_metrics(outputs, has_classifier=False) == {"val/recon": 3.0}  # an autoencoder has no accuracy


def test_predictions_cover_a_split_in_order_with_dropout_off():
    dm = _data()
    torch.manual_seed(0)
    model = DeepSoftmaxAutoencoder(
        encoder=mlp_encoder([16]), embedding_dim=6, input_shape=dm.input_shape, num_classes=4, class_names=GENRES, dropout=0.5
    )
    model.train()  # as after fitting: predict must switch dropout off itself
    trainer = quiet_trainer(2)
    first, again = predict_split(trainer, model, dm, "test"), predict_split(trainer, model, dm, "test")
    features, labels, tracks = dm.tensors["test"]
    assert set(first) == {"embedding", "logits", "y", "track", "reconstruction_error"}
    assert np.array_equal(first["y"], labels.numpy()) and np.array_equal(first["track"], tracks.numpy())
    assert first["embedding"].shape == (len(features), 6) and np.array_equal(first["logits"], again["logits"])
    model.eval()
    with torch.no_grad():
        assert np.allclose(first["logits"], model(features).logits.numpy(), atol=1e-6)


def test_the_embedding_space_is_named_for_the_model():
    dm = _data()
    kwargs = {"encoder": mlp_encoder([8]), "input_shape": dm.input_shape, "num_classes": 4, "class_names": GENRES}
    assert embedding_space_name(DeepSoftmaxAutoencoder(**kwargs)) == "bottleneck"
    assert embedding_space_name(TwoLayerNet(**kwargs)) == "hidden"


# --- evaluate itself: slow ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_analysis_gives_the_figures_it_declares_and_no_others(dsae):
    metrics = dsae["metrics"]
    spaces = ("raw", "bottleneck", "logits")
    expected = (
        _keys((metric_names.ACC, metric_names.RECON, metric_names.TRACK_ACC), SPLITS)
        | _keys((metric_names.SILHOUETTE, metric_names.KNN_ACC, metric_names.PROBE_ACC), ("val", "test"), spaces)
        | _keys((metric_names.MIG, metric_names.MAX_MI, metric_names.ACTIVE_DIMS), ("val", "test"))
    )
    assert set(metrics) == expected
    assert all(metric_names.declared(k) for k in metrics)
    assert all(np.isfinite(v) for v in metrics.values())


@pytest.mark.slow
def test_the_reports_on_disk_agree_with_the_returned_figures(dsae):
    out, metrics, dm, model = dsae["out"], dsae["metrics"], dsae["dm"], dsae["model"]
    assert json.loads((out / "report/final_metrics.json").read_text()) == metrics
    assert json.loads((out / "report/history.json").read_text()) == HISTORY
    features, labels, _ = dm.tensors["test"]
    model.eval()
    with torch.no_grad():
        right = (model(features).logits.argmax(dim=1) == labels).float().mean().item()
    assert metrics["test/acc"] == pytest.approx(right)  # the best model's own test clips, scored again here

    with (out / "plots/confusion_matrix.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["true\\predicted", *GENRES] and [r[0] for r in rows[1:]] == GENRES
    counts = np.array([[int(c) for c in r[1:]] for r in rows[1:]])
    assert counts.sum() == len(labels) and np.trace(counts) / counts.sum() == pytest.approx(metrics["test/acc"])
    report = json.loads((out / "report/classification_report.json").read_text())
    assert report["accuracy"] == pytest.approx(metrics["test/acc"]) and set(GENRES) <= set(report)

    with (out / "report/song_predictions.csv").open() as handle:
        songs = list(csv.DictReader(handle))
    for split in SPLITS:
        mine = [s for s in songs if s["split"] == split]
        assert len(mine) == len(np.unique(dm.tensors[split][2]))  # one verdict per song of the split
        assert np.mean([s["correct"] == "True" for s in mine]) == pytest.approx(metrics[f"{split}/track_acc"])
    assert all(abs(sum(float(s[f"prob_{g}"]) for g in GENRES) - 1) < 1e-5 for s in songs)
    assert {s["track_id"] for s in songs} == set(dm.track_ids)


@pytest.mark.slow
def test_the_plots_are_written_where_the_run_folder_expects_them(dsae):
    plots = {p.name for p in (dsae["out"] / "plots").glob("*.png")}
    assert plots == {
        "pca_raw.png",
        "pca_bottleneck.png",
        "pca_logits.png",
        "confusion_matrix.png",
        "confusion_matrix_tracks.png",
        "learning_curves.png",
        "latent_genre_mi.png",
        "latent_traversal.png",
        "interpolation.png",
    }


@pytest.mark.slow
def test_switched_off_analyses_give_no_figures_and_no_plots(dsae, tmp_path):
    metrics = evaluate(dsae["trainer"], dsae["model"], dsae["dm"], HISTORY, tmp_path, "DSAE", **LEAN)
    assert set(metrics) == _keys((metric_names.ACC, metric_names.RECON, metric_names.TRACK_ACC), SPLITS)
    for key in metrics:  # the same model, the same clips: the figures that remain are the same
        assert metrics[key] == dsae["metrics"][key]
    assert not {"latent_genre_mi.png", "latent_traversal.png", "interpolation.png"} & {p.name for p in tmp_path.rglob("*")}


@pytest.mark.slow
def test_a_model_without_a_decoder_is_scored_in_its_hidden_space(tmp_path):
    dm = _data()
    trainer, model = _fitted(TwoLayerNet, dm)
    metrics = evaluate(trainer, model, dm, HISTORY, tmp_path, "TwoLayerNet", **FULL)
    assert not any(k.endswith("/recon") or "bottleneck" in k for k in metrics)
    assert {"test/knn_acc_hidden", "test/probe_acc_hidden", "test/mig_genre", "test/track_acc"} <= set(metrics)
    written = {p.name for p in (tmp_path / "plots").glob("*.png")}
    assert "pca_hidden.png" in written and not {"interpolation.png", "latent_traversal.png"} & written
