"""The training run's MLflow logger: Lightning's MLFlowLogger, made resilient, plus the run's params, results and resume.

Every MLflow write of a training run goes through here (the sweep's parent run is `sweep_parent`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from genre_style.tracking.store import prepare_store, resolve_tracking_uri
from genre_style.urls import redact_url

log = logging.getLogger(__name__)


class ResilientMLFlowLogger(MLFlowLogger):
    """An MLFlowLogger whose writes never stop training, and that never holds a step twice after a resume.

    A store that goes away mid-run is recorded in `failures` and reported at the end; every result is kept
    in the run folder. While `hold_metrics` is on (`MetricHistory` switches it on when the fit keeps a
    full-state `last.ckpt`), metrics wait until a full checkpoint holds their epoch: a resume retrains the
    epochs after its checkpoint, so MLflow must not have them already.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tracking_uri: str = kwargs.get("tracking_uri") or ""  # the resolved store, shown to the user (redacted)
        self.failures: list[str] = []
        self._held: list[tuple[dict, int | None]] | None = None  # None: not holding

    def _guard(self, what: str, call: Any) -> None:
        try:
            call()
        except Exception as exc:  # network errors, HTTP 5xx, a locked database: the run goes on
            if not self.failures:
                log.warning("MLflow %s failed (%s); training goes on, results stay in the run folder",
                            what, str(exc).splitlines()[0][:200])
            self.failures.append(f"{what}: {exc}")

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._held is not None:
            self._held.append((dict(metrics), step))
            return
        self._guard("metric logging", lambda: MLFlowLogger.log_metrics(self, metrics, step))

    def hold_metrics(self) -> None:
        if self._held is None:
            self._held = []

    def release_metrics(self) -> None:
        """Log what is held, and log directly from now on."""
        self._log_held()
        self._held = None

    def _log_held(self) -> None:
        held, self._held = self._held, ([] if self._held is not None else None)
        for metrics, step in held or []:
            self._guard("metric logging", lambda m=metrics, s=step: MLFlowLogger.log_metrics(self, m, s))

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        MLFlowLogger.after_save_checkpoint(self, checkpoint_callback)
        if not checkpoint_callback.save_weights_only:  # a full state: what was logged so far is in it
            self._log_held()

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        """Lightning calls this after fit and again after test; ending the run each time costs a second
        (MLflow's background writer is shut down and joined), so success waits for `close`."""
        if status != "success":
            self.close(status)

    @rank_zero_only
    def close(self, status: str = "success") -> None:
        """End the run once, flushing held and queued metric writes (nothing measured is dropped)."""
        self.release_metrics()
        self._guard("finishing the run", lambda: MLFlowLogger.finalize(self, status))

    # --- the run's record ---------------------------------------------------------------------------

    def start(self, cfg: DictConfig, resumed_from: Path | None) -> None:
        """Create the run now (a broken store fails before training) with the config as params; a resumed
        run (`resumed_from`: the folder of the run it continues) has its params already and gets a tag."""
        if resumed_from is not None:
            self.experiment.set_tag(self.run_id, "resumed_from", str(resumed_from))
        else:
            self.log_hyperparams(flatten_config(cfg))

    def backfill(self, rows: list[dict[str, float]]) -> None:
        """Log the metrics of checkpointed epochs the store lacks (held, or still queued for MLflow's
        background writer, when the process was killed), each step once."""
        keys = sorted({key for row in rows for key in row if "/" in key})
        try:  # per metric: an epoch's val metrics can have reached MLflow without its train metrics
            logged = {key: {m.step for m in self.experiment.get_metric_history(self.run_id, key)} for key in keys}
        except Exception as exc:  # the store is unreachable: reported with the other failures at the end
            log.warning("could not check MLflow for missing epochs: %s", exc)
            return
        missing_rows = [{k: v for k, v in row.items() if "/" in k and row["step"] not in logged[k]} for row in rows]
        for row, missing in zip(rows, missing_rows):
            if missing:
                self.log_metrics(missing, step=int(row["step"]))
        if any(missing_rows):
            log.info("backfilled %d epoch(s) MLflow had not received before the interruption", sum(map(bool, missing_rows)))

    def upload_results(self, metrics: dict[str, float], folder: Path, step: int) -> None:
        """The final metrics and the whole artifact folder (already on disk: a failure here loses nothing)."""
        def upload() -> None:
            self.log_metrics(metrics, step=step)
            self.experiment.log_artifacts(self.run_id, str(folder))

        self._guard("final upload", upload)

    def report_failures(self, folder: Path) -> None:
        if self.failures:
            log.warning("MLflow at %s failed %d time(s) during this run (first: %s). Nothing is lost: metrics, plots, "
                        "reports and the checkpoint are in %s (report/final_metrics.json, report/history.json).",
                        redact_url(self.tracking_uri), len(self.failures), self.failures[0][:200], folder)


def flatten_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as `a.b.c -> value`, for MLflow params (passwords in URLs redacted)."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = redact_url(node) if isinstance(node, str) else node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


def run_identity(cfg: DictConfig) -> tuple[str, dict[str, str]]:
    """The run's name and tags, from the config: `run_name`/`tags` where set, else the model and data; a
    sweep's trial is named after its study and nested under the sweep's parent run."""
    model = str(cfg.model._target_).rsplit(".", 1)[-1]
    name = cfg.get("run_name") or f"{model} on {Path(str(cfg.data.root)).name} ({cfg.data.split} split)"
    tags = {str(k): str(v) for k, v in (cfg.get("tags") or {}).items()}
    sweep: Any = cfg.get("sweep_context") or {}
    if sweep.get("study_name") is not None:
        name = f"trial {sweep.trial_number} of {sweep.study_name}"
        tags.update({"optuna.study": str(sweep.study_name), "optuna.trial": str(sweep.trial_number)})
        if sweep.get("parent_run_id"):
            tags["mlflow.parentRunId"] = str(sweep.parent_run_id)  # nests the trial under the sweep's run
    return name, tags


def start_run(cfg: DictConfig, folder: Any, resumed: Any) -> ResilientMLFlowLogger | None:
    """The configured MLflow logger (None with `logger=none`), its run created (or continued, on resume), named
    and tagged from the config; the run folder's `run_info.json` says which run it is."""
    from hydra.utils import instantiate

    node = (cfg.get("logger") or {}).get("mlflow")
    if node is None:
        folder.update_info(status="running")
        return None
    run_id = resumed.info.get("mlflow_run_id") if resumed else None
    name, tags = run_identity(cfg)
    tracker = instantiate(node, run_name=name, tags=tags, run_id=run_id)
    tracker.start(cfg, resumed_from=resumed.path if run_id else None)
    if getattr(rank_zero_only, "rank", 0) == 0:  # not in the extra processes Lightning's DDP launcher starts
        uri = redact_url(tracker.tracking_uri)
        log.info("MLflow run %s in %s", tracker.run_id, uri)
        folder.update_info(mlflow_run_id=tracker.run_id, tracking_uri=uri, status="running")
    return tracker


def mlflow_logger(
    experiment_name: str = "genre-style",
    tracking_uri: str | None = None,
    default_store_dir: str = "outputs",
    run_name: str | None = None,
    tags: dict[str, Any] | None = None,
    synchronous: bool = False,
    write_every_s: int | None = 5,
    run_id: str | None = None,
) -> ResilientMLFlowLogger:
    """A logger on `tracking_uri`, else $MLFLOW_TRACKING_URI, else a SQLite store in `default_store_dir`.

    `synchronous=False` queues metric writes in MLflow's background thread (a SQLite write per epoch
    otherwise costs tens of milliseconds, a sizeable share of a small model's epoch); finishing the run
    flushes the queue. `write_every_s` has that thread write what queued up every so many seconds, as one
    batch (MLflow's MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS, which wins where set). `run_id` continues a run.
    """
    if not synchronous and write_every_s:
        os.environ.setdefault("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", str(int(write_every_s)))
    uri = resolve_tracking_uri(tracking_uri, default_store_dir)
    logger = ResilientMLFlowLogger(
        experiment_name=experiment_name,
        run_id=run_id,
        tracking_uri=uri,
        run_name=run_name,
        tags={k: str(v) for k, v in (tags or {}).items()},
        artifact_location=prepare_store(uri, default_store_dir),
        log_model=False,
        synchronous=synchronous,
    )
    return logger
