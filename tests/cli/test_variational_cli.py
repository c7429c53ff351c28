"""The variational models and the disentanglement measures through the real entry point and MLflow store."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tests.cli.test_train_cli import _assert_clean_error
from tests.conftest import FAST_RUN, FULL_EVALUATION, run_cli

pytestmark = pytest.mark.slow  # real processes (the CLI, servers): `make test-fast` leaves them out


def test_beta_tcvae_with_a_classifier_logs_mig_and_its_plots(tmp_path):
    result = run_cli(
        [*FAST_RUN, *FULL_EVALUATION, "model=beta_tcvae", "model.classifier=true", "gamma=0.5", "model.kl_warmup_epochs=2"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("genre-style").experiment_id])[0]
    metrics = {k.removeprefix("final/"): v for k, v in run.data.metrics.items()}  # final values and per-epoch curves
    for key in (
        "test/mig_genre",
        "test/active_dims",
        "test/max_mi_genre",
        "val/mig_genre",
        "test/acc",
        "train/tc",
        "train/mi",
        "train/dimwise_kl",
        "val/kl",
        "test/probe_acc_bottleneck",
    ):
        assert key in metrics, key
    assert 0.0 <= metrics["test/mig_genre"] <= 1.0 and 0.0 <= metrics["test/active_dims"] <= 1.0
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/latent_genre_mi.png", "plots/latent_traversal.png", "plots/confusion_matrix.png"} <= plots


def test_every_model_with_an_embedding_gets_the_genre_mig(tmp_path):
    result = run_cli([*FAST_RUN, *FULL_EVALUATION, "model=two_layer", "trainer.max_epochs=1"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("genre-style").experiment_id])[0]
    assert "final/test/mig_genre" in run.data.metrics
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/latent_genre_mi.png" in plots and "plots/latent_traversal.png" not in plots  # no decoder


def test_bad_variational_settings_are_one_line_errors(tmp_path):
    _assert_clean_error(run_cli(["data=synthetic", "model=vae", "model.beta=-1"], tmp_path), "model.beta=-1", "fix:")
    _assert_clean_error(
        run_cli(["data=synthetic", "model=beta_tcvae", "model.classifier=true", "data.source.genres=[jazz]"], tmp_path),
        "model.classifier=true",
        "two genres",
    )
