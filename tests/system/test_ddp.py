"""`trainer=ddp`: Lightning DDP with two CPU processes (gloo), logged once, in line with one process."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import FAST_RUN, run_cli

pytestmark = pytest.mark.slow  # real processes (the CLI, servers): `make test-fast` leaves them out

# 48 training clips in one batch: both processes see that batch and average identical gradients, so
# two processes must reproduce the one-process run (same seed on every rank).
RUN = [*[a for a in FAST_RUN if not a.startswith("trainer.max_epochs")], "trainer.max_epochs=4", "model=dsae"]


def _only_run(out):
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("genre-style").experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]  # the second process made no run of its own
    return client, runs[0]


def _final_metrics(out) -> dict:
    (report,) = out.glob("runs/*/artifacts/report/final_metrics.json")
    return json.loads(report.read_text())


@pytest.fixture(scope="module")
def single_and_ddp(tmp_path_factory):
    single, ddp = tmp_path_factory.mktemp("single"), tmp_path_factory.mktemp("ddp")
    for out, extra in ((single, []), (ddp, ["trainer=ddp", "trainer.accelerator=cpu"])):
        result = run_cli([*RUN, *extra], out)
        assert result.returncode == 0, result.stderr[-4000:]
    return single, ddp, result


def test_ddp_runs_two_processes_and_logs_once_from_rank_zero(single_and_ddp):
    _, ddp, result = single_and_ddp
    assert "distributed_backend=gloo" in result.stdout + result.stderr
    assert "Starting with 2 processes" in result.stdout + result.stderr
    client, run = _only_run(ddp)
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.strategy"] == "ddp" and run.data.params["trainer.devices"] == "2"
    # one value per epoch (the final, best-checkpoint one is final/val/acc), not one per process
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == sorted(
        {m.step for m in client.get_metric_history(run.info.run_id, "train/loss")}
    )
    assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 4 and "final/val/acc" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/confusion_matrix.png", "plots/pca_bottleneck.png", "plots/learning_curves.png"} <= artifacts
    (folder,) = ddp.glob("runs/*")  # one run folder, finished, with the best checkpoint
    assert json.loads((folder / "run_info.json").read_text())["status"] == "finished"
    assert (folder / "artifacts/checkpoints/best.ckpt").exists()


def test_ddp_results_are_in_line_with_one_process(single_and_ddp):
    single, ddp, _ = single_and_ddp
    one, two = _final_metrics(single), _final_metrics(ddp)
    for key in ("train/acc", "val/acc", "test/acc", "train/recon", "val/recon"):
        assert two[key] == pytest.approx(one[key], rel=1e-3, abs=1e-3), key
    _, single_run = _only_run(single)
    _, ddp_run = _only_run(ddp)
    assert ddp_run.data.metrics["test/f1_macro"] == pytest.approx(single_run.data.metrics["test/f1_macro"], abs=1e-3)


def test_ddp_inside_a_sweep_is_refused_with_the_alternative(tmp_path):
    result = run_cli(["-m", *RUN, "trainer=ddp", "seed=1,2"], tmp_path)
    assert result.returncode != 0
    assert "cannot run inside a multirun sweep" in result.stderr and "n_jobs" in result.stderr
    assert "Traceback" not in result.stderr
