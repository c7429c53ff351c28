"""Which MLflow runs a report reads, in one shape old and new, and which of them repeat one configuration."""

from __future__ import annotations

from typing import Any, Sequence

from genre_style.data.front_ends import DEFAULT as DEFAULT_FRONT_END
from genre_style.errors import UserError
from genre_style.setting_roles import BOOKKEEPING, SEEDS
from genre_style.tracking.run_record import data_name

MODEL_NAMES = {
    "TwoLayerNet": "Two-layer net",
    "Autoencoder": "Vanilla autoencoder",
    "DeepSoftmaxAutoencoder": "DSAE",
    "LogisticRegressionBaseline": "Logistic regression (scikit-learn)",
    "VariationalAutoencoder": "VAE",
    "BetaTCVAE": "beta-TCVAE",
}


def select_runs(client: Any, experiment: str, run_ids: Sequence[str] | None, filter_string: str) -> list[Any]:
    if run_ids:
        return [normalized(client.get_run(r)) for r in run_ids]
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise UserError(
            f"no MLflow experiment {experiment!r} in this store", "train something first, or pass --experiment / --tracking-uri"
        )
    query = "attributes.status = 'FINISHED'" + (f" and {filter_string}" if filter_string else "")
    runs = client.search_runs(
        [found.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"], max_results=5000
    )
    return [normalized(r) for r in runs if "model" in r.data.params or "model._target_" in r.data.params]


def normalized(run: Any) -> Any:
    """One shape for runs old and new: the best checkpoint's `final/<name>` values stand for `<name>` (runs from
    before logged them as late points of the curves), `model`/`encoder` params are class names (older runs had
    `model._target_` paths), and the `experiment` tag is read as `tags.experiment`."""
    metrics, params = run.data.metrics, run.data.params  # MLflow's own dicts: updated in place
    metrics.update({k.removeprefix("final/"): v for k, v in list(metrics.items()) if k.startswith("final/")})
    for key, old in (("model", "model._target_"), ("encoder", "model.encoder._target_")):
        if key not in params and old in params:
            params[key] = params[old].rsplit(".", 1)[-1]
    if "experiment" in run.data.tags:
        params.setdefault("tags.experiment", run.data.tags["experiment"])
    return run


def group_runs(runs: Sequence[Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(split, features, data folder) -> {model class -> newest run}."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for run in runs:  # newest first
        p = run.data.params
        key = (
            p.get("data.split.mode", "?"),
            p.get("data.clips.features", DEFAULT_FRONT_END),
            data_name(p.get("data.source.root", "?")),
        )
        model, encoder = p["model"], p.get("encoder", "")
        if encoder and encoder != "MLPEncoder" and model in MODEL_NAMES:
            model = f"{model} + {encoder}"
        groups.setdefault(key, {}).setdefault(model, run)
    return groups


# Params that do not change what is learned, or are the seed itself: runs differing only in these repeat one configuration.
NOT_CONFIGURATION = BOOKKEEPING + SEEDS + ("model._target_", "model.encoder._target_")


def scored_clips(params: dict[str, str]) -> str | None:
    """Clips per song that val and test score: runs that train on more clips of each song still pair with
    runs that don't, as long as both are tested on the same clips."""
    scored = params.get("data.split.eval_clips_per_track")
    return scored if scored not in (None, "None") else params.get("data.clips.clips_per_track")


def configuration_key(params: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in params.items() if not k.startswith(NOT_CONFIGURATION)))
