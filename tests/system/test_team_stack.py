"""The team topology without Docker: PostgreSQL, an MLflow tracking server on it that asks who you are (MLflow's
basic-auth app, as docker/compose.yaml runs it), and two sweep workers (think: two machines) that sign in with an
account of their own, join one Optuna study stored in the same PostgreSQL and log over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import FAST_RUN, REPO, run_cli
from tests.servers import PG_PASSWORD, mlflow_server, postgres_server

pytestmark = pytest.mark.slow  # real processes (the CLI, servers): `make test-fast` leaves them out

N_TRIALS = 6  # about three a worker: both take part (the sweep joins one study from two processes)
STUDY = "team-study"
ADMIN_PASSWORD = "admin-only-secret-1"  # throwaway accounts on loopback; the tests check neither reaches a log or param
WORKER_PASSWORD = "worker-only-secret-2"
SECRETS = (PG_PASSWORD, ADMIN_PASSWORD, WORKER_PASSWORD)


@pytest.fixture(scope="module")
def team(tmp_path_factory, small_corpus):
    """Start the servers, run two workers side by side to the end; yield what a test inspects."""
    home = tmp_path_factory.mktemp("team")
    auth = {"MLFLOW_AUTH_ADMIN_USERNAME": "admin", "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with (
        postgres_server(("mlflow", "optuna")) as urls,
        mlflow_server(
            urls["mlflow"], home / "mlartifacts", auth={**auth, "GENRE_STYLE_AUTH_DATABASE_URI": urls["mlflow"] + "_auth"}
        ) as tracking,
        pytest.MonkeyPatch.context() as admin,
    ):
        admin.setenv("MLFLOW_TRACKING_USERNAME", "admin")  # this process reads the results as the admin
        admin.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
        from mlflow.server import get_app_client

        get_app_client("basic-auth", tracking_uri=tracking).create_user("worker", WORKER_PASSWORD)
        sweep = [
            "-m",
            "hparams_search=dsae_optuna",
            *[a for a in FAST_RUN if not a.startswith("trainer.max_epochs")],
            "trainer.max_epochs=1",
            f"data.source.root={small_corpus}",
            f"hydra.sweeper.n_trials={N_TRIALS}",
            f"hydra.sweeper.study_name={STUDY}",
        ]
        workers = []
        for name in ("worker-a", "worker-b"):  # each with its own outputs folder, as on separate machines
            env = {
                **os.environ,
                "GENRE_STYLE_OUTPUTS": str(home / name),
                "PYTHONUNBUFFERED": "1",
                "MLFLOW_TRACKING_URI": tracking,
                "MLFLOW_TRACKING_USERNAME": "worker",  # the workers' own account, not the admin's
                "MLFLOW_TRACKING_PASSWORD": WORKER_PASSWORD,
                "OPTUNA_STORAGE": urls["optuna"],
                "OMP_NUM_THREADS": "1",
            }
            log = (home / f"{name}.log").open("w")
            workers.append(
                (
                    subprocess.Popen(
                        [sys.executable, "-m", "genre_style.train", *sweep],
                        cwd=REPO,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    ),
                    home / f"{name}.log",
                )
            )
        for process, log in workers:
            assert process.wait(timeout=600) == 0, log.read_text()[-4000:]
        study = optuna.load_study(study_name=STUDY, storage=urls["optuna"])
        # A teammate with no account, and one with a wrong password: refused in one line before any work.
        refused = [
            run_cli(
                [*FAST_RUN, f"data.source.root={small_corpus}", "trainer.max_epochs=1"],
                home / "anonymous",
                env={
                    "MLFLOW_TRACKING_URI": tracking,
                    **({"MLFLOW_TRACKING_USERNAME": "worker", "MLFLOW_TRACKING_PASSWORD": p} if p else {}),
                },
            )
            for p in ("", "not-the-password")
        ]
        yield {
            "study": study,
            "client": MlflowClient(tracking_uri=tracking),
            "url": tracking,
            "refused": refused,
            "logs": [log.read_text() for _, log in workers] + [(home / "mlflow-server.log").read_text()],
            "home": home,
        }


def _runs(client):
    experiment = client.get_experiment_by_name("genre-style")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("genre_style.sweep_parent") == "true"]
    trials = [r for r in runs if "optuna.trial" in r.data.tags]
    return parents, trials


def test_every_trial_ran_once_with_a_unique_number_and_both_workers_took_part(team):
    study = team["study"]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.number for t in complete) == list(range(N_TRIALS))
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    # a worker that asked after the others had taken the last trial closes its extra trial unrun
    for extra in (t for t in study.trials if t.number >= N_TRIALS):
        assert extra.state == optuna.trial.TrialState.FAIL and "not_run" in extra.user_attrs
    workers = Counter(t.user_attrs["sweeper"] for t in complete)
    assert len(workers) == 2, workers
    params = {tuple(sorted(t.params.items())) for t in complete}
    assert len(params) == N_TRIALS  # the joining worker did not replay the first worker's draws


def test_every_trial_is_one_mlflow_run_with_its_metrics_under_one_parent(team):
    study, client = team["study"], team["client"]
    parents, trials = _runs(client)
    assert len(parents) == 1
    assert Counter(int(r.data.tags["optuna.trial"]) for r in trials) == Counter(range(N_TRIALS))
    values = {t.number: t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    for run in trials:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.metrics["final/val/acc"] == pytest.approx(values[int(run.data.tags["optuna.trial"])], abs=1e-6)
        assert {"test/acc", "train/loss", "test/f1_macro"} <= set(run.data.metrics)
        assert all(secret not in str(v) for v in run.data.params.values() for secret in SECRETS)
        assert all(secret not in str(v) for v in run.data.tags.values() for secret in SECRETS)
    # artifacts went through the server (--serve-artifacts), not to a path only one machine sees
    assert trials[0].info.artifact_uri.startswith("mlflow-artifacts:")
    plots = {a.path for a in client.list_artifacts(trials[0].info.run_id, "plots")}
    assert "plots/confusion_matrix.png" in plots
    assert parents[0].data.metrics["best_value"] == pytest.approx(study.best_value)
    assert PG_PASSWORD not in parents[0].data.tags["optuna.storage"]


def test_the_server_refuses_anyone_without_an_account(team):
    for request in (
        urllib.request.Request(f"{team['url']}/api/2.0/mlflow/experiments/search?max_results=1"),
        urllib.request.Request(f"{team['url']}/api/2.0/mlflow/runs/search", data=b"{}", method="POST"),
    ):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
    anonymous, wrong = team["refused"]
    assert anonymous.returncode == 2 and "refused a request without an account" in anonymous.stderr, anonymous.stderr[-2000:]
    assert wrong.returncode == 2 and "refused the account 'worker'" in wrong.stderr, wrong.stderr[-2000:]
    for result in (anonymous, wrong):
        assert "MLFLOW_TRACKING_PASSWORD" in result.stderr and "Traceback" not in result.stderr


def test_no_password_reaches_a_log_or_a_file(team):
    """The workers' and the server's logs, and every file the workers and the server wrote (run folders, Hydra's
    records of each trial's overrides, the artifacts served); params and tags are checked run by run above."""
    for log in team["logs"]:
        for secret in SECRETS:
            assert secret not in log
    files = [path for path in team["home"].rglob("*") if path.is_file() and path.stat().st_size < 50_000_000]
    assert any(path.name == "overrides.yaml" for path in files)  # a trial's record, where the study's URL once was
    for path in files:
        content = path.read_bytes()
        assert all(secret.encode() not in content for secret in SECRETS), path
    for result in team["refused"]:
        assert all(secret not in result.stdout + result.stderr for secret in SECRETS)
