"""`python -m genre_style.report` choosing its runs (--filter, --experiment) from a real store, and its one-line
errors when there is nothing to report."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import FAST_RUN, run_cli

BASELINE = ["model=logreg", "features=stats", "evaluation.embedding_metrics=false", *FAST_RUN]


def _report(out: Path, *args: str):
    return run_cli(["--out", str(out / "report"), *args], out, module="genre_style.report")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Two baseline runs (seeds 1 and 2) in experiment genre-style and one (seed 3) in experiment other."""
    out = tmp_path_factory.mktemp("report-store")
    for args in (["-m", *BASELINE, "seed=1,2"], [*BASELINE, "seed=3", "logger.mlflow.experiment_name=other"]):
        result = run_cli(args, out)
        assert result.returncode == 0, result.stderr[-3000:]
    return out


def _reported_seeds(out: Path) -> set[str]:
    """The seeds of the store's runs whose ids (first 8 characters, as Table 1 gives them) report.md names."""
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    text = (out / "report" / "report.md").read_text()
    return {r.data.params["seed"] for r in runs if r.info.run_id[:8] in text}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "seeds"),
    [
        ((), {"1", "2"}),
        (("--filter", "params.seed = '2'"), {"2"}),
        (("--experiment", "other"), {"3"}),
        (("--experiment", "other", "--filter", "params.seed = '3'"), {"3"}),
    ],
)
def test_the_report_holds_the_runs_its_filter_and_experiment_choose(store, tmp_path, args, seeds):
    out = tmp_path / "copy"
    out.mkdir()
    (out / "mlflow.db").write_bytes((store / "mlflow.db").read_bytes())  # each report on its own copy of the store
    result = _report(out, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{len(seeds)} run(s) in" in result.stdout, result.stdout
    assert _reported_seeds(out) and _reported_seeds(out) <= seeds  # Table 1 names a configuration's newest run
    if len(seeds) > 1:  # and the repeated-runs table lists the seeds it summarises
        assert f"| {','.join(sorted(seeds))} |" in (out / "report" / "report.md").read_text()


@pytest.mark.slow
def test_no_store_is_one_line_and_creates_none(tmp_path):
    missing = tmp_path / "nowhere" / "mlflow.db"
    result = _report(tmp_path, "--tracking-uri", f"sqlite:///{missing}")
    assert result.returncode == 2 and f"no MLflow store at sqlite:///{missing}" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not missing.exists() and not (tmp_path / "report").exists()


@pytest.mark.slow
def test_a_store_without_finished_runs_is_one_line(tmp_path):
    """A store whose only run never finished (a crash, a kill): nothing to report, said in one line."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("genre-style"))
    client.log_param(run.info.run_id, "model", "DeepSoftmaxAutoencoder")  # a training run's params, status RUNNING
    result = _report(tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "no finished training runs match in experiment 'genre-style'" in result.stderr and "Traceback" not in result.stderr
    unknown = _report(tmp_path, "--experiment", "nope")
    assert unknown.returncode == 2 and "no MLflow experiment 'nope' in this store" in unknown.stderr, unknown.stderr[-2000:]
