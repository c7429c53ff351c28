"""Build Lightning's MLFlowLogger on a store that works out of the box, and fail fast on one that doesn't."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from genre_style.errors import UserError

log = logging.getLogger(__name__)
SERVER_TIMEOUT_S = 5.0


def resolve_tracking_uri(tracking_uri: str | None, store_dir: str | Path) -> str:
    """The store every command uses: `tracking_uri`, else $MLFLOW_TRACKING_URI, else SQLite in `store_dir`."""
    store = Path(store_dir).expanduser().resolve()
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{store / 'mlflow.db'}"


def default_tracking_uri() -> str:
    """What the commands read when given no store: $MLFLOW_TRACKING_URI, else the SQLite store under the outputs folder."""
    return resolve_tracking_uri(None, os.environ.get("GENRE_STYLE_OUTPUTS") or "outputs")


def prepare_store(uri: str, store_dir: str | Path) -> str | None:
    """Get a store ready before a run is created; return the artifact location for a new experiment.

    A server must answer (and a lost one should cost seconds, not the run); a local store gets its
    folder and keeps artifacts in `<store_dir>/mlartifacts`, with absolute paths so runs started from
    any folder find them. A server decides on its own artifact store (None).
    """
    if uri.startswith(("http://", "https://")):
        check_tracking_server(uri)
        # MLflow retries a dead server for minutes by default.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        return None
    store = Path(store_dir).expanduser().resolve()
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the MLflow store folder {store} ({exc})", "set paths.output_root to a writable folder") from None
    return (store / "mlartifacts").as_uri()


def check_tracking_server(uri: str, timeout: float = SERVER_TIMEOUT_S) -> None:
    """Raise a UserError within `timeout` seconds if an http(s) tracking server does not answer."""
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - user-chosen server
            if response.status >= 400:
                raise OSError(f"HTTP {response.status}")
    except (OSError, urllib.error.URLError) as exc:
        raise UserError(
            f"MLflow tracking server {uri} does not answer ({getattr(exc, 'reason', exc)})",
            "start the server, point logger.mlflow.tracking_uri (or MLFLOW_TRACKING_URI) at one that runs, "
            "or unset MLFLOW_TRACKING_URI to log to the local store under outputs/ (logger=none logs nothing)",
        ) from None


def _resilient_logger_class() -> type:
    from lightning.pytorch.loggers import MLFlowLogger
    from lightning.pytorch.utilities import rank_zero_only

    class ResilientMLFlowLogger(MLFlowLogger):
        """An MLFlowLogger whose writes never stop training: a store that goes away mid-run is recorded in
        `failures` and reported at the end, while every result is kept in the run folder."""

        failures: list[str]

        def _guard(self, what: str, call: Any) -> None:
            try:
                call()
            except Exception as exc:  # network errors, HTTP 5xx, a locked database: the run goes on
                if not self.failures:
                    log.warning("MLflow %s failed (%s); training goes on, results stay in the run folder",
                                what, str(exc).splitlines()[0][:200])
                self.failures.append(f"{what}: {exc}")

        _held: list[tuple[dict, int | None]] | None = None  # metrics waiting for a checkpoint; None: not holding

        @rank_zero_only
        def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
            if self._held is not None:
                self._held.append((dict(metrics), step))
                return
            self._guard("metric logging", lambda: MLFlowLogger.log_metrics(self, metrics, step))

        def hold_metrics(self) -> None:
            """Keep logged metrics back until a full checkpoint is saved (see `tracking/resume_checkpoint.py`):
            MLflow then never holds an epoch that a resume would train, and log, again."""
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

    return ResilientMLFlowLogger


def mlflow_logger(
    experiment_name: str = "genre-style",
    tracking_uri: str | None = None,
    default_store_dir: str = "outputs",
    run_name: str | None = None,
    tags: dict[str, Any] | None = None,
    synchronous: bool = False,
    write_every_s: int | None = 5,
    run_id: str | None = None,
) -> Any:
    """An MLFlowLogger on `tracking_uri`, else $MLFLOW_TRACKING_URI, else a SQLite store in `default_store_dir`.

    `synchronous=False` queues metric writes in MLflow's background thread (a SQLite write per epoch
    otherwise costs tens of milliseconds, a sizeable share of a small model's epoch); finishing the run
    flushes the queue. `write_every_s` has that thread write what queued up every so many seconds, as one
    batch (MLflow's MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS, which wins where set): a write costs ~8 ms of
    CPU whatever its size, taken from training twice an epoch otherwise. Where artifacts go: see
    `prepare_store`.
    """
    if not synchronous and write_every_s:
        os.environ.setdefault("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", str(int(write_every_s)))
    uri = resolve_tracking_uri(tracking_uri, default_store_dir)
    artifact_location = prepare_store(uri, default_store_dir)
    logger = _resilient_logger_class()(
        experiment_name=experiment_name,
        run_id=run_id,
        tracking_uri=uri,
        run_name=run_name,
        tags={k: str(v) for k, v in (tags or {}).items()},
        artifact_location=artifact_location,
        log_model=False,
        synchronous=synchronous,
    )
    logger.tracking_uri = uri
    logger.failures = []
    return logger
