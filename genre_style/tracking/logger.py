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
from omegaconf import DictConfig

from genre_style.errors import UserError
from genre_style.tracking.mlflow_store import first_use_lock, prepare_store, resolve_tracking_uri, store_error, ui_address
from genre_style.tracking.run_record import data_name, description, logged_model_name, readable_params, run_name, run_tags
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
        self._checkpointed_step: int | None = None  # the newest step a full checkpoint holds
        self.model_logging = True  # the best checkpoint as an MLflow model at the end (`mlflow_logger(log_model=...)`)
        self.system_metrics_every_s = 0.0  # MLflow's system metrics, sampled this often (0: off)
        self.store_dir = "outputs"  # where a local store and the record of its UI's address live (`mlflow_logger`)
        self._system_metrics: Any = None
        self._logged: set[tuple[str, int | None]] = (
            set()
        )  # (metric, step) pairs in MLflow: this process's and, on resume, the store's

    def _guard(self, what: str, call: Any) -> None:
        try:
            call()
        except Exception as exc:  # network errors, HTTP 5xx, a locked database: the run goes on
            if not self.failures:
                log.warning(
                    "MLflow %s failed (%s); training goes on, results stay in the run folder",
                    what,
                    str(exc).splitlines()[0][:200],
                )
            self.failures.append(f"{what}: {exc}")

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._held is not None:
            self._held.append((dict(metrics), step))
            return
        self._write(metrics, step)

    def _write(self, metrics: Mapping[str, float], step: int | None) -> None:
        """The one place metrics reach MLflow, each (metric, step) once: the test loop's figures are not logged again
        with the final ones, and a resumed run skips the pairs its store already holds."""
        new = {k: v for k, v in metrics.items() if (k, step) not in self._logged}
        if new:
            self._logged.update((k, step) for k in new)
            self._guard("metric logging", lambda: MLFlowLogger.log_metrics(self, new, step))

    def hold_metrics(self) -> None:
        if self._held is None:
            self._held = []

    def release_metrics(self) -> None:
        """Log what is held, and log directly from now on."""
        self._log_held()
        self._held = None

    def _log_held(self, up_to_step: int | None = None) -> int | None:
        """Log held metrics, except those of steps after `up_to_step` (a resume computes them again); return the
        newest step logged."""
        held, self._held = self._held or [], ([] if self._held is not None else None)
        kept = [(m, s) for m, s in held if up_to_step is None or s is None or s <= up_to_step]
        if len(kept) < len(held):
            log.info(
                "%d metric record(s) of epochs after the resume checkpoint not logged: a resume computes them again",
                len(held) - len(kept),
            )
        for metrics, step in kept:
            self._write(metrics, step)
        return max((s for _, s in kept if s is not None), default=None)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        MLFlowLogger.after_save_checkpoint(self, checkpoint_callback)
        if not checkpoint_callback.save_weights_only:  # a full state: what was logged so far is in it
            newest = self._log_held()
            if newest is not None:
                self._checkpointed_step = max(newest, self._checkpointed_step or 0)

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        """Lightning calls this after fit and again after test; ending the run each time costs a second
        (MLflow's background writer is shut down and joined), so success waits for `close`."""
        if status != "success":
            self.close(status)

    @rank_zero_only
    def close(self, status: str = "success") -> None:
        """End the run (FINISHED, FAILED or KILLED), flushing held and queued metric writes. After a failure or a
        signal, held metrics of epochs the resume checkpoint lacks are dropped: MLflow then holds each step once,
        whether or not the run is resumed (a resume logs them when it trains those epochs again)."""
        if self._system_metrics is not None:
            self._guard("system metrics", self._system_metrics.finish)
            self._system_metrics = None
        if status != "success" and self._held is not None and self._checkpointed_step is not None:
            self._log_held(up_to_step=self._checkpointed_step)
        self.release_metrics()
        self._guard("finishing the run", lambda: MLFlowLogger.finalize(self, status))

    # --- the run's record ---------------------------------------------------------------------------

    def start(self, cfg: DictConfig, resumed_from: Path | None) -> None:
        """Create the run now (a broken store fails before training) with the config as params. A resumed run
        (`resumed_from`: its folder) has its params already; it notes which (metric, step) pairs the store holds,
        so that whatever the interruption cut off is logged once and nothing is logged twice."""
        if self.system_metrics_every_s:
            self._start_system_metrics(resumed=resumed_from is not None)
        if resumed_from is None:
            from genre_style.reproducibility import settings

            math = {f"math.{key}": value for key, value in settings().items()}  # what decides the bits (reproducibility.py)
            self.log_hyperparams({**readable_params(cfg), **math})
            return
        self.experiment.set_tag(self.run_id, "resumed_from", str(resumed_from))
        for key in self.experiment.get_run(self.run_id).data.metrics:
            self._logged.update((key, m.step) for m in self.experiment.get_metric_history(self.run_id, key))

    def _start_system_metrics(self, resumed: bool) -> None:
        """MLflow's system metrics (CPU, memory, disk, network; GPU where pynvml is installed), sampled on a thread of
        their own every `system_metrics_every_s` seconds."""
        # Undocumented (MLflow's fluent API starts it only for a fluent run); guarded: a failure is a warning.
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        def start() -> None:
            self._system_metrics = SystemMetricsMonitor(
                str(self.run_id),
                sampling_interval=self.system_metrics_every_s,
                resume_logging=resumed,
                tracking_uri=self.tracking_uri,
            )
            self._system_metrics.start()

        self._guard("system metrics", start)

    def backfill(self, rows: list[dict[str, float]]) -> None:
        """Log the checkpointed epochs' metrics: on resume, those the store lacks (held, or still queued for
        MLflow's background writer, when the process was killed); the rest are skipped by `_write`."""
        for row in rows:
            self.log_metrics({k: v for k, v in row.items() if "/" in k}, step=int(row["step"]))

    def log_datasets(self, datamodule: Any, data_root: str) -> None:
        """train/val/test as MLflow datasets: name, source (the data root), a digest from the clip cache and the split
        (two runs on the same clips share it), and a table of clips and songs per genre."""
        import hashlib

        import pandas as pd
        from mlflow.data.pandas_dataset import from_pandas
        from mlflow.entities import DatasetInput, InputTag

        def log() -> None:
            inputs = []
            for split in ("train", "val", "test"):
                rows = datamodule.split_profile(split)
                digest = hashlib.sha256(f"{datamodule.cache_key}|{split}|{rows}".encode()).hexdigest()[:16]
                dataset = from_pandas(pd.DataFrame(rows), source=data_root, digest=digest, name=f"{data_name(data_root)}-{split}")
                # Private, and guarded (a failure is a warning): what mlflow.log_input sends; the client API takes entities.
                entity = dataset._to_mlflow_entity()
                inputs.append(DatasetInput(entity, tags=[InputTag("mlflow.data.context", split)]))
            self.experiment.log_inputs(self.run_id, datasets=inputs)

        self._guard("dataset logging", log)

    def finish(self, cfg: DictConfig, metrics: dict[str, float], history: list[dict[str, float]], folder: Path) -> None:
        """The final (best-checkpoint) metrics under `final/`, not as a late point on the per-epoch curves; the
        run's description; the artifact folder (already on disk: a failure here loses nothing); then end the run,
        flushing MLflow's queued metric writes."""

        def upload() -> None:
            self._write({f"final/{k}": v for k, v in metrics.items()}, step=None)
            self.experiment.set_tag(self.run_id, "mlflow.note.content", description(cfg, metrics, history))
            self.experiment.log_artifacts(self.run_id, str(folder))

        self._guard("final upload", upload)
        best = folder / "checkpoints" / "best.ckpt"
        if self.model_logging and best.exists():
            from genre_style.tracking.pyfunc_model import log_model

            in_sweep = (cfg.get("sweep_context") or {}).get("study_name") is not None  # the sweep registers its best
            register = None if in_sweep else cfg.get("register_as")
            name = logged_model_name(cfg)
            self._guard("model logging", lambda: log_model(best, self.tracking_uri, str(self.run_id), register, name))
        self.close("success")

    def ui_link(self) -> str:
        """This run in MLflow's UI, in its machine-learning view (MLflow 3 opens experiments on its GenAI overview);
        for a local store, the address `make ui` serves it at (`store.ui_address`)."""
        base = ui_address(self.tracking_uri, self.store_dir)
        return (
            f"{redact_url(base).rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}?workflowType=machine_learning"
        )

    def report(self, folder: Path) -> None:
        """The run's UI link, and how often the store failed (and that nothing is lost)."""
        log.info("in MLflow: %s", self.ui_link())
        if self.failures:
            log.warning(
                "MLflow at %s failed %d time(s) during this run (first: %s). Nothing is lost: metrics, plots, "
                "reports and the checkpoint are in %s (report/final_metrics.json, report/history.json).",
                redact_url(self.tracking_uri),
                len(self.failures),
                self.failures[0][:200],
                folder,
            )


def run_identity(cfg: DictConfig) -> tuple[str, dict[str, str]]:
    """The run's name (`run_name` where set) and tags, from the config; a sweep's trial is named after its study
    (the sweep renames it with its settings and score at the end) and nested under the sweep's parent run."""
    name, tags = cfg.get("run_name") or run_name(cfg), run_tags(cfg)
    sweep: Any = cfg.get("sweep_context") or {}
    if sweep.get("study_name") is not None:
        name = f"trial {sweep.trial_number} · {sweep.study_name}"
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
    try:
        tracker.start(cfg, resumed_from=resumed.path if run_id else None)
    except Exception as exc:
        raise store_error(tracker.tracking_uri, exc) from None
    if getattr(rank_zero_only, "rank", 0) == 0:  # not in the extra processes Lightning's DDP launcher starts
        uri = redact_url(tracker.tracking_uri)
        log.info("MLflow run %s in %s", tracker.run_id, uri)
        folder.update_info(mlflow_run_id=tracker.run_id, tracking_uri=uri, status="running")
    return tracker


def quiet_mlflow() -> None:
    """MLflow's INFO chatter (creating the database tables, validating the model's input example) off the console; its
    warnings stay. After `import mlflow`, which configures its loggers."""
    import mlflow  # noqa: F401

    logging.getLogger("mlflow").setLevel(logging.WARNING)


def mlflow_logger(
    experiment_name: str = "genre-style",
    tracking_uri: str | None = None,
    default_store_dir: str = "outputs",
    run_name: str | None = None,
    tags: dict[str, Any] | None = None,
    synchronous: bool = False,
    write_every_s: int | None = 5,
    run_id: str | None = None,
    log_model: bool = True,
    system_metrics_every_s: float = 10.0,
) -> ResilientMLFlowLogger:
    """A logger on `tracking_uri`, else $MLFLOW_TRACKING_URI, else a SQLite store in `default_store_dir`.

    `synchronous=False` queues metric writes in MLflow's background thread (a SQLite write per epoch
    otherwise costs tens of milliseconds, a sizeable share of a small model's epoch); finishing the run
    flushes the queue. `write_every_s` has that thread write what queued up every so many seconds, as one
    batch (MLflow's MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS, which wins where set). `run_id` continues a run.
    `log_model` logs the best checkpoint as an MLflow model (`tracking/pyfunc_model.py`) when the run ends;
    `system_metrics_every_s` samples MLflow's system metrics on a thread (0 switches them off).
    """
    if not synchronous and write_every_s:
        os.environ.setdefault("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", str(int(write_every_s)))
    uri = resolve_tracking_uri(tracking_uri, default_store_dir)
    quiet_mlflow()
    try:
        with first_use_lock(uri):  # the store's schema and the experiment, created by one process at a time
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
            logger.experiment_id  # noqa: B018 - opens the store and creates the experiment now, under the lock
            logger.model_logging = log_model
            logger.store_dir = str(default_store_dir)
            logger.system_metrics_every_s = float(system_metrics_every_s)
    except UserError:
        raise
    except Exception as exc:
        raise store_error(uri, exc) from None
    return logger
