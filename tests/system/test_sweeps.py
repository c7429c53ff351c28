"""Hydra multirun sweeps on Optuna: real studies on disk, real MLflow runs, real trial failures."""

from __future__ import annotations

import optuna
import pytest
from mlflow.tracking import MlflowClient

from genre_style.sweeps.search_space import parse_search_space
from genre_style.sweeps.storage import open_storage
from tests.conftest import FAST_RUN, REPO, run_cli

pytestmark = pytest.mark.slow  # real processes (the CLI, servers): `make test-fast` leaves them out

SWEEP = [
    "-m",
    "hparams_search=dsae_optuna",
    *[a for a in FAST_RUN if not a.startswith("trainer.max_epochs")],
    "trainer.max_epochs=1",
]


def _study(out, name):
    return optuna.load_study(study_name=name, storage=open_storage(str(out / "optuna" / f"{name}.journal")))


def _mlflow_runs(out):
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("genre-style")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("genre_style.sweep_parent") == "true"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def test_a_sweep_runs_its_trials_tracks_them_and_resumes_to_the_total(tmp_path):
    first = run_cli([*SWEEP, "hydra.sweeper.n_trials=4", "register_as=sweep-best", "logger.mlflow.log_model=true"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    study = _study(tmp_path, "dsae_optuna")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    client, parents, children = _mlflow_runs(tmp_path)
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert sorted(int(c.data.tags["optuna.trial"]) for c in children) == [0, 1, 2, 3]
    assert parent.data.metrics["best_value"] == pytest.approx(study.best_value)
    assert parent.data.tags["best.gamma"] == str(study.best_params["gamma"])
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "optuna")}
    assert {
        "optuna/optimization_history.png",
        "optuna/param_importances.png",
        "optuna/parallel_coordinate.png",
        "optuna/trials.csv",
    } <= artifacts
    # every trial's value is the val/acc its run logged for the best checkpoint
    by_number = {int(c.data.tags["optuna.trial"]): c.data.metrics["final/val/acc"] for c in children}
    for trial in study.trials:
        assert trial.value == pytest.approx(by_number[trial.number], abs=1e-6)
    # readable: trial names carry settings and score; the parent has the search space and links the best trial's run
    for child in children:
        assert (
            child.info.run_name.startswith(f"trial {child.data.tags['optuna.trial']} · ") and " · val/acc=" in child.info.run_name
        )
        assert "gamma=" in child.info.run_name
    assert parent.data.params["sampler"] == "TPESampler" and "search.gamma" in parent.data.params
    best_run = parent.data.tags["best_run_id"]
    assert best_run == study.best_trial.user_attrs["mlflow_run_id"] and best_run in parent.data.tags["mlflow.note.content"]
    trials_csv = client.download_artifacts(parent.info.run_id, "optuna/trials.csv", str(tmp_path))
    assert "mlflow_run_id" in open(trials_csv).readline()
    (version,) = client.search_model_versions("name='sweep-best'")  # the best trial's model, registered
    assert version.run_id == best_run

    again = run_cli([*SWEEP, "hydra.sweeper.n_trials=6"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    study = _study(tmp_path, "dsae_optuna")
    assert len(study.trials) == 6 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == 6  # the resumed run did not replay the first run's draws
    _, parents, children = _mlflow_runs(tmp_path)
    assert len(parents) == 1 and len(children) == 6  # the study keeps one parent run


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path):
    # dropout=1.0 is rejected by config validation: that trial fails, the others run.
    result = run_cli(
        [
            *SWEEP,
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.study_name=failing",
            "hydra.sweeper.sampler._target_=optuna.samplers.BruteForceSampler",
            "~hydra.sweeper.sampler.n_startup_trials",
            "hydra.sweeper.params=null",
            "dropout=choice(0.1,1.0,0.2)",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    states = sorted(t.state.name for t in _study(tmp_path, "failing").trials)
    assert states == ["COMPLETE", "COMPLETE", "FAIL"]
    assert "dropout=1.0" in result.stdout + result.stderr


def test_a_config_written_for_the_official_plugin_runs_unchanged(tmp_path):
    result = run_cli(
        [
            "hparams_search=official_style",
            f"hydra.searchpath=[file://{REPO / 'tests' / 'configs'}]",
            *[a for a in FAST_RUN if not a.startswith("trainer.max_epochs")],
            "trainer.max_epochs=1",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    journals = list((tmp_path / "optuna").glob("*.journal"))
    assert len(journals) == 1  # study_name: null gets a stable derived name, so a rerun resumes it
    study = optuna.load_study(study_name=journals[0].stem, storage=open_storage(str(journals[0])))
    assert len(study.trials) == 2 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert set(study.trials[0].params) == {"model.optimizer.lr", "data.loader.batch_size", "model.embedding_dim"}


def test_pruning_reports_every_epoch_and_stops_weak_trials(tmp_path):
    result = run_cli(
        [
            *SWEEP,
            "hydra.sweeper.n_trials=4",
            "hydra.sweeper.study_name=pruned",
            "trainer.max_epochs=4",
            "+hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, upper: 0.0}",
            "optimized_metric=val/loss",
            "hydra.sweeper.direction=minimize",
            "monitor.metric=val/loss",
            "monitor.mode=min",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = _study(tmp_path, "pruned").trials
    # val/loss > 0 always exceeds the threshold: every trial is pruned after its first report
    assert [t.state.name for t in trials] == ["PRUNED"] * 4
    assert all(list(t.intermediate_values) == [0] for t in trials)


def test_search_space_grammar_matches_the_official_plugin():
    searched, fixed = parse_search_space(
        {
            "gamma": "interval(0, 1.0)",
            "lr": "tag(log, interval(1e-4, 1e-2))",
            "model.embedding_dim": "int(interval(16, 128))",
            "batch_size": "choice(32, 64)",
            "model.encoder.hidden_sizes": "choice([256,128],[128])",
            "seed": "7",
            "trainer.max_epochs": "range(1, 10, 3)",
        },
        ["seed=8", "dropout=interval(0.0, 0.5)"],
    )
    assert searched["gamma"] == optuna.distributions.FloatDistribution(0.0, 1.0)
    assert searched["lr"] == optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    assert searched["model.embedding_dim"] == optuna.distributions.IntDistribution(16, 128)
    assert searched["model.encoder.hidden_sizes"].choices == ("[256,128]", "[128]")
    assert searched["trainer.max_epochs"] == optuna.distributions.IntDistribution(1, 7, step=3)
    assert "dropout" in searched and fixed == {"seed": "8"}  # the command line wins


def test_the_two_layer_search_space_parses_into_distributions():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["hparams_search=two_layer_optuna"], return_hydra_config=True)
    searched, fixed = parse_search_space(cfg.hydra.sweeper.params, [])
    assert cfg.model._target_.endswith("TwoLayerNet") and cfg.optimized_metric == "val/acc"
    assert set(searched) == {"model.embedding_dim", "model.encoder.activation", "dropout", "lr", "batch_size"} and not fixed
    assert searched["lr"].log and searched["model.encoder.activation"].choices == ("tanh", "relu")


def test_an_unreachable_study_database_is_one_line_without_the_password(tmp_path):
    result = run_cli([*SWEEP, "hydra.sweeper.storage=postgresql+psycopg2://me:s3cret@127.0.0.1:1/optuna"], tmp_path)
    assert result.returncode == 2
    assert "cannot open the Optuna storage postgresql+psycopg2://me:***@127.0.0.1:1/optuna" in result.stderr
    assert "fix:" in result.stderr and "Traceback" not in result.stderr and "s3cret" not in result.stderr


def test_a_trial_asked_after_the_study_is_full_is_closed_unrun():
    """Two workers can both see n_trials - 1 trials and ask: the one given number n_trials does not run it."""
    from genre_style.sweeps.optuna_sweeper import OptunaSweeperImpl

    sweeper = OptunaSweeperImpl(
        sampler=None, direction="maximize", storage=None, study_name="s", n_trials=2, n_jobs=1, params=None
    )
    study = optuna.create_study(direction="maximize")
    kept = [study.ask(), study.ask()]
    extra = study.ask()  # the other worker's ask landed first
    assert [sweeper._surplus(study, t) for t in (*kept, extra)] == [False, False, True]
    closed = study.trials[extra.number]
    assert closed.state == optuna.trial.TrialState.FAIL and "not_run" in closed.user_attrs
    assert all(study.trials[t.number].state == optuna.trial.TrialState.RUNNING for t in kept)


def test_a_summary_tag_written_by_two_workers_at_once_is_set_not_fatal(tmp_path):
    """Workers that end together all write the study summary; on PostgreSQL all but one insert then hits
    a unique-key violation (seen in tests/system/test_team_stack.py). The loser's second try updates the tag."""
    from mlflow.exceptions import MlflowException

    from genre_style.tracking.sweep_parent import _set_tag

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("race")).info.run_id

    class RacingClient:
        """The real client, whose first write of a tag loses the race the way PostgreSQL reports it."""

        lost = False

        def set_tag(self, run, key, value):
            if not self.lost:
                self.lost = True
                client.set_tag(run, key, "written by the other worker")
                raise MlflowException('(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "tag_pk"')
            client.set_tag(run, key, value)

    _set_tag(RacingClient(), run_id, "best_trial", "3")
    assert client.get_run(run_id).data.tags["best_trial"] == "3"
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST|not found|No run"):
        _set_tag(client, "0" * 32, "best_trial", "3")  # any other failure is still raised
