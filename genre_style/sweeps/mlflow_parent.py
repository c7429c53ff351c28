"""One MLflow parent run per study: trials nest under it, and it gets the study's summary at the end."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
PARENT_TAG = "genre_style.sweep_parent"


def open_parent_run(tracking_uri: str, experiment_name: str, artifact_location: str | None, study_name: str,
                    storage: str) -> tuple[Any, str]:
    """Reuse this study's parent run (a resumed sweep continues it), or start one."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(experiment_name, artifact_location=artifact_location)
    )
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = 'true' and tags.`optuna.study` = '{study_name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        return client, run_id
    run = client.create_run(
        experiment_id,
        run_name=f"sweep {study_name}",
        tags={PARENT_TAG: "true", "optuna.study": study_name, "optuna.storage": storage},
    )
    return client, run.info.run_id


def log_study_summary(client: Any, run_id: str, study: Any, metric_name: str) -> None:
    """Best value and params, Optuna's plots and a CSV of every trial, on the parent run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    with tempfile.TemporaryDirectory() as tmp:
        trials_csv = Path(tmp) / "trials.csv"
        study.trials_dataframe().to_csv(trials_csv, index=False)
        client.log_artifact(run_id, str(trials_csv), "optuna")
        if complete:
            best = study.best_trial
            client.log_metric(run_id, "best_value", best.value)
            client.log_metric(run_id, "n_complete_trials", len(complete))
            client.set_tag(run_id, "best_trial", str(best.number))
            client.set_tag(run_id, "optimized_metric", metric_name)
            for key, value in best.params.items():
                client.set_tag(run_id, f"best.{key}", str(value))  # tags, not params: a resumed study's best changes
            plots = {"optimization_history": ovm.plot_optimization_history, "parallel_coordinate": ovm.plot_parallel_coordinate}
            if len(complete) >= 2 and len(best.params) >= 1:
                plots["param_importances"] = ovm.plot_param_importances
            for name, plot in plots.items():
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        axes = plot(study)
                    figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
                    figure.set_size_inches(9, 5.5)
                    figure.tight_layout()
                    client.log_figure(run_id, figure, f"optuna/{name}.png")
                    plt.close(figure)
                except Exception as exc:  # a plot Optuna can't draw for this study must not hide the others
                    log.warning("could not draw optuna/%s.png: %s", name, exc)
