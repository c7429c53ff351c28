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

from genre_style.config_checks import in_multirun, validate_config
from genre_style.errors import UserError
from genre_style.urls import redact_url

log = logging.getLogger(__name__)


def flatten_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as `a.b.c -> value`, for MLflow params."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = redact_url(node) if isinstance(node, str) else node  # no passwords in params

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


def find_resume(cfg: DictConfig) -> tuple[Path, dict] | None:
    """The run folder to continue (`resume=<run folder>` or `resume=last`) and its run info, or None."""
    import json

    target = cfg.get("resume")
    if not target:
        return None
    if str(target) == "last":
        candidates = [p.parent for p in Path(cfg.paths.output_root, "runs").glob("*/run_info.json")
                      if (p.parent / "checkpoints/last.ckpt").exists() and json.loads(p.read_text()).get("status") == "running"]
        if not candidates:
            raise UserError(f"resume=last: no interrupted run with a checkpoint under {cfg.paths.output_root}/runs",
                            "pass the run folder itself: resume=outputs/runs/<timestamp>")
        folder = max(candidates, key=lambda p: (p / "checkpoints/last.ckpt").stat().st_mtime)
    else:
        folder = Path(str(target)).expanduser()
    if not (folder / "checkpoints/last.ckpt").exists():
        raise UserError(f"resume={target}: {folder}/checkpoints/last.ckpt does not exist",
                        "pass a run folder of an interrupted run (outputs/runs/<timestamp>), or resume=last")
    info_path = folder / "run_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    return folder, info


def _write_run_info(out_dir: Path, **fields: Any) -> None:
    import json

    path = out_dir / "run_info.json"
    info = json.loads(path.read_text()) if path.exists() else {}
    info.update(fields)
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2))


def train(cfg: DictConfig) -> float:
    """Train one model and return the best validation score of `cfg.monitor.metric` (what sweeps optimise).

    If anything fails after the MLflow run was created, the run is marked FAILED (not left RUNNING).
    """
    state: dict[str, Any] = {}
    try:
        return _train(cfg, state)
    except BaseException:
        logger = state.get("mlflow")
        if logger is not None:
            logger.close("failed")
        raise


def _train(cfg: DictConfig, state: dict[str, Any]) -> float:
    validate_config(cfg)
    from genre_style.gc_imports import imports_without_gc

    with imports_without_gc():  # ~1 s of full collections otherwise
        import lightning.pytorch as pl
        from hydra.utils import instantiate
        from lightning.pytorch.loggers import MLFlowLogger

        from genre_style.evaluation import evaluate, log_to_mlflow
        from genre_style.tracking.history import MetricHistory

        if cfg.get("logger"):
            import mlflow  # noqa: F401 - the logger's (1 s of imports): here, so its objects are frozen too

    sweep: Any = cfg.get("sweep_context") or {}
    if sweep.get("torch_threads"):
        import torch

        torch.set_num_threads(int(sweep.torch_threads))  # parallel trials share the cores, not oversubscribe them
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    out_dir = Path(cfg.paths.output_dir)
    artifacts = out_dir / "artifacts"
    resume = find_resume(cfg)
    resume_run_id = resume[1].get("mlflow_run_id") if resume else None

    # Loggers first: a tracking server that does not answer fails the job before any preprocessing.
    loggers = []
    for node in (cfg.get("logger") or {}).values():
        extra = {"run_id": resume_run_id} if resume_run_id and str(node.get("_target_", "")).endswith("mlflow_logger") else {}
        loggers.append(instantiate(node, **extra))
    tracker: Any = next((lg for lg in loggers if isinstance(lg, MLFlowLogger)), None)  # the resilient MLflow logger
    state["mlflow"] = tracker

    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = instantiate(cfg.model, input_shape=datamodule.input_shape, num_classes=datamodule.num_classes,
                        class_names=datamodule.class_names)
    main_process = _is_rank_zero()  # under DDP, Lightning reruns this script once per extra process
    if tracker is not None:
        if cfg.run_name is None:
            tracker._run_name = f"{type(model).__name__} on {Path(cfg.data.root).name} ({cfg.data.split} split)"
        if sweep.get("study_name") is not None:
            tracker._run_name = f"trial {sweep.trial_number} of {sweep.study_name}"
            tracker.tags = {**(tracker.tags or {}), "optuna.study": str(sweep.study_name), "optuna.trial": str(sweep.trial_number)}
            if sweep.get("parent_run_id"):
                tracker.tags["mlflow.parentRunId"] = str(sweep.parent_run_id)  # nests the trial under the sweep's run
        if resume_run_id and resume:
            tracker.experiment.set_tag(resume_run_id, "resumed_from", str(resume[0]))  # params were logged the first time
        else:
            tracker.log_hyperparams(flatten_config(cfg))  # creates the run now: a broken store fails before training
        if main_process:
            log.info("MLflow run %s in %s", tracker.run_id, redact_url(tracker.tracking_uri))
            _write_run_info(out_dir, mlflow_run_id=tracker.run_id, tracking_uri=redact_url(tracker.tracking_uri),
                            status="running")
    elif main_process:
        _write_run_info(out_dir, status="running")

    history = MetricHistory()
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()] + [history]
    if not cfg.trainer.get("enable_progress_bar", True):  # trainer.enable_progress_bar=false wins over the callback
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.ProgressBar)]
    if sweep.get("study_name") is not None:
        from genre_style.sweeps.trial_context import OptunaReporting, load_trial

        trial = load_trial(sweep.study_name, sweep.storage, int(sweep.trial_number))
        callbacks.append(OptunaReporting(trial, cfg.monitor.metric, prune=trial.study.user_attrs.get("pruner") is not None))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    if main_process:  # what the run used, written before training so a crash still leaves it behind
        artifacts.mkdir(parents=True, exist_ok=True)
        (artifacts / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        datamodule.write_split_tracks(artifacts / "data/split_tracks.csv")
        datamodule.write_skipped_files(artifacts / "data/skipped_files.csv")
        for skipped in datamodule.skipped_files:
            log.warning("skipped %s: %s", skipped["path"], skipped["reason"])

    if resume:
        log.info("resuming %s from %s", resume[0], resume[0] / "checkpoints/last.ckpt")
    trainer.fit(model, datamodule=datamodule, ckpt_path=str(resume[0] / "checkpoints/last.ckpt") if resume else None,
                weights_only=False)
    best_path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best_path:
        trainer.test(model, datamodule=datamodule, ckpt_path=best_path, weights_only=False)
    else:
        trainer.test(model, datamodule=datamodule)
    if trainer.world_size > 1:
        # DDP: fit and test ran on every process (test metrics are synced across them). What follows (scoring
        # every clip once, plots, uploads) is rank zero's alone, on one device; the other processes end here.
        import torch.distributed

        torch.distributed.destroy_process_group()
        if not trainer.is_global_zero:
            return float("nan")
        eval_trainer = pl.Trainer(accelerator=trainer.accelerator, devices=1, logger=False, enable_checkpointing=False,
                                  enable_progress_bar=False, enable_model_summary=False)
    else:
        eval_trainer = trainer
    title = type(model).__name__
    metrics = evaluate(eval_trainer, model, datamodule, history.history, artifacts, title, **cfg.get("evaluation", {}))
    if best_path:
        (artifacts / "checkpoints").mkdir(exist_ok=True)
        Path(best_path).replace(artifacts / "checkpoints" / "best.ckpt")
    if tracker is not None:
        try:
            log_to_mlflow(tracker, metrics, artifacts, step=trainer.global_step + 1)
        except Exception as exc:  # the store went away: every result is in the run folder already
            tracker.failures.append(f"final upload: {exc}")
        tracker.close("success")  # ends the run and flushes MLflow's queued metric writes
    (out_dir / "checkpoints" / "last.ckpt").unlink(missing_ok=True)  # only for resuming; the run is complete
    _write_run_info(out_dir, status="finished")
    if resume:
        _write_run_info(resume[0], status=f"resumed and finished in {out_dir}")
    for split in ("train", "val", "test"):
        shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith(split)}
        log.info("final %s: %s", split, shown)
    log.info("run folder: %s", out_dir)
    if tracker is not None and tracker.failures:
        log.warning("MLflow at %s failed %d time(s) during this run (first: %s). Nothing is lost: metrics, plots, "
                    "reports and the checkpoint are in %s (report/final_metrics.json, report/history.json).",
                    redact_url(tracker.tracking_uri), len(tracker.failures), tracker.failures[0][:200], artifacts)

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
        if in_multirun() and not exc.whole_sweep:
            raise  # a sweep records this trial as failed and goes on
        sys.exit(2)


def _is_rank_zero() -> bool:
    """False in the extra processes Lightning's DDP launcher starts (they rerun this command)."""
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


if __name__ == "__main__":
    main()
