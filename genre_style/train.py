"""`python -m genre_style.train`: build data, model and trainer from the Hydra config, fit, test, log.

Heavy imports (torch, Lightning, MLflow) happen inside `train`, after the config has been checked,
so `--help` and config mistakes answer at once.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from genre_style.config_checks import validate_config
from genre_style.errors import UserError

log = logging.getLogger(__name__)


def flatten_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as `a.b.c -> value`, for MLflow params."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


def train(cfg: DictConfig) -> float:
    """Train one model and return the best validation score of `cfg.monitor.metric` (what sweeps optimise)."""
    validate_config(cfg)
    import lightning.pytorch as pl
    from hydra.utils import instantiate

    from genre_style.evaluation import evaluate, log_to_mlflow
    from genre_style.tracking.history import MetricHistory

    sweep = cfg.get("sweep_context") or {}
    if sweep.get("torch_threads"):
        import torch

        torch.set_num_threads(int(sweep.torch_threads))  # parallel trials share the cores, not oversubscribe them
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    out_dir = Path(cfg.paths.output_dir)
    artifacts = out_dir / "artifacts"

    # Loggers first: a tracking server that does not answer fails the job before any preprocessing.
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    mlflow = next((lg for lg in loggers if type(lg).__name__ == "MLFlowLogger"), None)

    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = instantiate(cfg.model, input_dim=datamodule.input_dim, num_classes=datamodule.num_classes,
                        class_names=datamodule.class_names)
    if mlflow is not None:
        if cfg.run_name is None:
            mlflow._run_name = f"{type(model).__name__} on {Path(cfg.data.root).name} ({cfg.data.split} split)"
        if sweep.get("study_name") is not None:
            mlflow._run_name = f"trial {sweep.trial_number} of {sweep.study_name}"
            mlflow.tags = {**(mlflow.tags or {}), "optuna.study": str(sweep.study_name), "optuna.trial": str(sweep.trial_number)}
            if sweep.get("parent_run_id"):
                mlflow.tags["mlflow.parentRunId"] = str(sweep.parent_run_id)  # nests the trial under the sweep's run
        mlflow.log_hyperparams(flatten_config(cfg))  # creates the run now: a broken store fails before training
        log.info("MLflow run %s in %s", mlflow.run_id, mlflow.tracking_uri)

    history = MetricHistory()
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()] + [history]
    if not cfg.trainer.get("enable_progress_bar", True):  # trainer.enable_progress_bar=false wins over the callback
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.ProgressBar)]
    if sweep.get("study_name") is not None:
        from genre_style.sweeps.trial_context import OptunaReporting, load_trial

        trial = load_trial(sweep.study_name, sweep.storage, int(sweep.trial_number))
        callbacks.append(OptunaReporting(trial, cfg.monitor.metric, prune=trial.study.user_attrs.get("pruner") is not None))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    # What the run used, written before training so a crash still leaves it behind.
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    datamodule.write_split_tracks(artifacts / "data/split_tracks.csv")
    datamodule.write_skipped_files(artifacts / "data/skipped_files.csv")
    for skipped in datamodule.skipped_files:
        log.warning("skipped %s: %s", skipped["path"], skipped["reason"])

    trainer.fit(model, datamodule=datamodule)
    best_path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    ckpt = best_path or None
    trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, weights_only=False) if ckpt else trainer.test(model, datamodule=datamodule)
    title = type(model).__name__
    metrics = evaluate(trainer, model, datamodule, history.history, artifacts, title, **cfg.get("evaluation", {}))
    if best_path:
        (artifacts / "checkpoints").mkdir(exist_ok=True)
        Path(best_path).replace(artifacts / "checkpoints" / "best.ckpt")
    log_to_mlflow(mlflow, metrics, artifacts, step=trainer.global_step + 1)
    if mlflow is not None:
        mlflow.finalize("success")  # ends the run and flushes MLflow's queued metric writes
    for split in ("train", "val", "test"):
        shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith(split)}
        log.info("final %s: %s", split, shown)
    log.info("run folder: %s", out_dir)

    score = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    if score is None:
        score = trainer.callback_metrics.get(cfg.monitor.metric)
    best = float(score) if score is not None else float("nan")
    return objective_value(cfg, metrics, {k: float(v) for k, v in trainer.callback_metrics.items()}, best)


def objective_value(cfg: DictConfig, final: dict[str, float], logged: dict[str, float], best: float) -> float:
    """The number a sweep optimises: `optimized_metric` if set, else the best `monitor.metric`.

    Final (best-checkpoint) metrics win over the last logged value of the same name.
    """
    name = cfg.get("optimized_metric")
    if not name or name in (cfg.monitor.metric, f"{cfg.monitor.metric}_best"):
        return best
    for source in (final, logged):
        if name in source:
            return float(source[name])
    raise UserError(f"optimized_metric={name!r} was not measured in this run",
                    f"choose one of {sorted(set(final) | set(logged))}")


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    try:
        return train(cfg)
    except UserError as exc:
        print(f"genre-style: error: {exc}", file=sys.stderr)
        if _in_multirun():
            raise  # a sweep records this trial as failed and goes on
        sys.exit(2)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


if __name__ == "__main__":
    main()
