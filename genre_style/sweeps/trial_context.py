"""The job's side of a sweep: find its Optuna trial, report the validation metric, stop when pruned."""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl

from genre_style.errors import UserError


def load_trial(study_name: str, storage: str, trial_number: int) -> Any:
    """The running trial, reopened from the shared storage, with the study's pruner."""
    import optuna
    from hydra.utils import instantiate

    from genre_style.sweeps.storage import open_storage, taken_over

    rdb = open_storage(taken_over(storage))
    study = optuna.load_study(study_name=study_name, storage=rdb)
    pruner_cfg = study.user_attrs.get("pruner")
    if pruner_cfg:
        study.pruner = instantiate(pruner_cfg)
    # From the trial's number to the id `Trial` needs, through the storage's public API (optuna.storages.BaseStorage).
    trial_id = rdb.get_trial_id_from_study_id_trial_number(rdb.get_study_id_from_name(study_name), trial_number)
    return optuna.trial.Trial(study, trial_id)


class OptunaReporting(pl.Callback):
    """Report `metric` to the trial after every validation; raise TrialPruned when the pruner says so. The trial
    records its MLflow run id, so the sweep can name the run after its settings and score, and link the best."""

    def __init__(self, trial: Any, metric: str, prune: bool) -> None:
        self.trial = trial
        self.metric = metric
        self.prune = prune

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        run_id = getattr(trainer.logger, "run_id", None)
        if run_id:
            self.trial.set_user_attr("mlflow_run_id", run_id)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.metric not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.metric])
        if not math.isfinite(value):
            return
        self.trial.report(value, step=trainer.current_epoch)
        if self.prune and self.trial.should_prune():
            import optuna

            raise optuna.TrialPruned(f"pruned at epoch {trainer.current_epoch} ({self.metric}={value:.4f})")


def trial_callbacks(cfg: Any) -> list[pl.Callback]:
    """For a sweep's trial (`sweep_context` filled in by the sweeper): share the cores with the trials beside it,
    and report to its Optuna trial. Nothing for a single run."""
    sweep: Any = cfg.get("sweep_context") or {}
    if sweep.get("study_name") is None:
        return []
    if sweep.get("torch_threads"):
        import torch

        torch.set_num_threads(int(sweep.torch_threads))  # parallel trials share the cores, not oversubscribe them
    trial = load_trial(sweep.study_name, sweep.storage, int(sweep.trial_number))
    return [OptunaReporting(trial, cfg.monitor.metric, prune=trial.study.user_attrs.get("pruner") is not None)]


def objective_value(cfg: Any, final: dict[str, float], logged: dict[str, float], best: Any) -> float:
    """`optimized_metric` if set (final best-checkpoint metrics win over the last logged value of the same
    name), else the best `monitor.metric`."""
    name = cfg.get("optimized_metric")
    if not name or name in (cfg.monitor.metric, f"{cfg.monitor.metric}_best"):
        best = best if best is not None else logged.get(cfg.monitor.metric)
        return float(best) if best is not None else float("nan")
    for source in (final, logged):
        if name in source:
            return float(source[name])
    raise UserError(
        f"optimized_metric={name!r} was not measured in this run", f"choose one of {sorted(set(final) | set(logged))}"
    )
