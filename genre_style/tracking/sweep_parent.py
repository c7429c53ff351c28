"""One MLflow parent run per study: trials nest under it, and it gets the study's summary at the end."""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
PARENT_TAG = "genre_style.sweep_parent"
PARENT_ATTR = "mlflow_parent_run_id"  # a study user attribute: every worker of the study nests under this run
JOIN_WAIT_S = 20.0


def open_parent_run(
    tracking_uri: str, experiment_name: str, artifact_location: str | None, study: Any, storage: str, joined: bool
) -> tuple[Any, str]:
    """Reuse this study's parent run (a resumed sweep, or another worker of the same study), or start one.

    The run id is kept in the study itself, the one place all workers share; a worker that joined a study
    another process has just created waits for that process to publish it rather than starting a second one.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = _experiment_id(client, experiment_name, artifact_location)
    deadline = time.monotonic() + (JOIN_WAIT_S if joined else 0.0)
    while True:
        run_id = _published_parent(client, study, experiment_id)
        if run_id or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if run_id is None:
        run_id = _find_or_create_parent(client, experiment_id, study.study_name, storage)
        study.set_user_attr(PARENT_ATTR, run_id)
    client.update_run(run_id, status="RUNNING")
    return client, run_id


def _experiment_id(client: Any, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:  # another worker created it a moment ago
        return client.get_experiment_by_name(name).experiment_id


def _published_parent(client: Any, study: Any, experiment_id: str) -> str | None:
    """The parent run id the study names, if that run exists in this store and experiment."""
    from mlflow.exceptions import MlflowException

    run_id = study.user_attrs.get(PARENT_ATTR)
    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except MlflowException:  # the study was last run against another tracking store
        return None
    return run_id if run.info.experiment_id == experiment_id and run.info.lifecycle_stage == "active" else None


def _find_or_create_parent(client: Any, experiment_id: str, study_name: str, storage: str) -> str:
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = 'true' and tags.`optuna.study` = '{study_name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(
        experiment_id,
        run_name=f"sweep {study_name}",
        tags={PARENT_TAG: "true", "optuna.study": study_name, "optuna.storage": storage},
    )
    return run.info.run_id


def _set_tag(client: Any, run_id: str, key: str, value: str) -> None:
    """`set_tag` that survives a sweep worker writing the same tag at the same moment: workers that end
    together all write the summary, and on PostgreSQL the store's insert-or-update then fails with a
    unique-key violation for all but one. The tag exists by then, so a second try updates it."""
    try:
        client.set_tag(run_id, key, value)
    except Exception as exc:
        if "unique" not in str(exc).lower() and "duplicate" not in str(exc).lower():
            raise
        client.set_tag(run_id, key, value)


def trial_name(trial: Any, metric_name: str) -> str:
    """`trial 3 · gamma=0.19 lr=0.00052 · val/acc=0.6125`: what the trial tried and what it scored, in the runs table."""
    settings = " ".join(
        f"{k.rsplit('.', 1)[-1]}={v:.3g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}"
        for k, v in trial.params.items()
    )
    score = f" · {metric_name}={trial.value:.4f}" if trial.value is not None else f" · {trial.state.name.lower()}"
    return f"trial {trial.number} · {settings}{score}"


def log_study_summary(client: Any, run_id: str, study: Any, metric_name: str, register_as: str | None = None) -> None:
    """On the parent run: the search space and sampler as params, the best value, a description linking the best
    trial's run, Optuna's plots (labelled with the metric), a CSV of every trial with its run id. Each trial's run
    is renamed after its settings and score; with `register_as`, the best trial's model is registered."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        if trial.user_attrs.get("mlflow_run_id") and trial.state != optuna.trial.TrialState.RUNNING:
            _try(lambda t=trial: client.set_tag(t.user_attrs["mlflow_run_id"], "mlflow.runName", trial_name(t, metric_name)))
    space = {f"search.{name}": str(dist) for t in trials for name, dist in t.distributions.items()}
    for key, value in {
        **space,
        "sampler": type(study.sampler).__name__,
        "optimized_metric": metric_name,
        "direction": study.direction.name.lower(),
    }.items():
        _try(lambda k=key, v=value: client.log_param(run_id, k, v))  # a resumed sweep logs the same values again
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    with tempfile.TemporaryDirectory() as tmp:
        trials_csv = Path(tmp) / "trials.csv"
        study.trials_dataframe().rename(columns={"user_attrs_mlflow_run_id": "mlflow_run_id"}).to_csv(trials_csv, index=False)
        client.log_artifact(run_id, str(trials_csv), "optuna")
        if complete:
            best = study.best_trial
            best_run = best.user_attrs.get("mlflow_run_id")
            client.log_metric(run_id, "best_value", best.value)
            client.log_metric(run_id, "n_complete_trials", len(complete))
            _set_tag(client, run_id, "best_trial", str(best.number))
            _set_tag(client, run_id, "optimized_metric", metric_name)
            for key, value in best.params.items():
                _set_tag(client, run_id, f"best.{key}", str(value))  # tags, not params: a resumed study's best changes
            if best_run:
                experiment = client.get_run(run_id).info.experiment_id
                _set_tag(client, run_id, "best_run_id", best_run)
                _set_tag(
                    client,
                    run_id,
                    "mlflow.note.content",
                    f"Optuna study **{study.study_name}**: {len(complete)} complete trial(s) of {len(trials)}, "
                    f"direction {study.direction.name.lower()} `{metric_name}`.\n\nBest: [{trial_name(best, metric_name)}]"
                    f"(#/experiments/{experiment}/runs/{best_run}).",
                )
                if register_as:
                    _register(client, best_run, register_as)
            plots = {"optimization_history": ovm.plot_optimization_history, "parallel_coordinate": ovm.plot_parallel_coordinate}
            if len(complete) >= 2 and len(best.params) >= 1:
                plots["param_importances"] = ovm.plot_param_importances
            for name, plot in plots.items():
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        axes = plot(study, target_name=metric_name)  # type: ignore[operator]  # optuna's matplotlib plots
                    figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
                    figure.set_size_inches(9, 5.5)
                    figure.tight_layout()
                    client.log_figure(run_id, figure, f"optuna/{name}.png")
                    plt.close(figure)
                except Exception as exc:  # a plot Optuna can't draw for this study must not hide the others
                    log.warning("could not draw optuna/%s.png: %s", name, exc)


def _register(client: Any, run_id: str, name: str) -> None:
    """The best trial's logged model into the Model Registry under `name` (a new version)."""
    import mlflow

    mlflow.set_tracking_uri(client.tracking_uri)
    try:
        from genre_style.tracking.pyfunc_model import logged_model_uri

        version = mlflow.register_model(logged_model_uri(f"runs:/{run_id}/model"), name)
        log.info("registered the best trial's model as %s version %s", name, version.version)
    except Exception as exc:
        log.warning("could not register the best trial's model as %s: %s", name, str(exc).splitlines()[0][:200])


def _try(call: Any) -> None:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - a param already logged with another value (a resumed, changed sweep)
        log.debug("not logged: %s", exc)
