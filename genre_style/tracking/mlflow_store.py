"""Which MLflow store a command uses, and whether it can be used: light (no MLflow import) until a client is asked for."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from genre_style.errors import UserError
from genre_style.urls import redact_url

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

    A server decides on its own artifact store (None) and should cost seconds, not the run, when lost
    (it was checked to answer by `config_checks`); a local store gets its folder and keeps artifacts in
    `<store_dir>/mlartifacts`, with absolute paths so runs started from any folder find them.
    """
    if uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # MLflow retries a dead server for minutes by default
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        return None
    store = Path(store_dir).expanduser().resolve()
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the MLflow store folder {store} ({exc})", "set paths.output_root to a writable folder"
        ) from None
    return (store / "mlartifacts").as_uri()


@contextmanager
def first_use_lock(uri: str) -> Iterator[None]:
    """Creating or upgrading a SQLite store (its schema migrations) and the experiment races when several runs
    start together on a new outputs folder ("duplicate column name"): one process at a time does it. Servers
    and other databases handle concurrency themselves."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    from filelock import FileLock

    with FileLock(uri.removeprefix("sqlite:///") + ".lock", timeout=300):
        yield


def store_error(uri: str, exc: BaseException) -> UserError:
    """A store that fails at the start of a run, as one line naming the store and the fix."""
    code = str(getattr(exc, "error_code", ""))  # MlflowException's: what the server answered
    if uri.startswith(("http://", "https://")) and code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        who = os.environ.get("MLFLOW_TRACKING_USERNAME")
        return UserError(
            f"the MLflow server {redact_url(uri)} refused "
            + (f"the account {who!r} (wrong password, or no permission)" if who else "a request without an account"),
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an account on that server (its admin creates them)",
        )
    return UserError(
        f"the MLflow store {redact_url(uri)} failed: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}",
        "check the store (a SQLite file from a newer MLflow, a full disk, a server's database), point "
        "MLFLOW_TRACKING_URI or logger.mlflow.tracking_uri at a working one, or use logger=none",
    )


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


def open_client(tracking_uri: str | None = None) -> Any:
    """An `MlflowClient` on `tracking_uri` or the default store, for the commands that read runs (report, embed)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri or default_tracking_uri())


def ui_url(tracking_uri: str, server: str, experiment: str = "genre-style") -> str:
    """Where a new user should land in the MLflow UI: the experiment's runs table in the machine-learning view
    (MLflow 3 opens experiments on its GenAI overview otherwise)."""
    found = (
        open_client(tracking_uri).get_experiment_by_name(experiment)
        if not tracking_uri.startswith("sqlite:///") or Path(tracking_uri.removeprefix("sqlite:///")).exists()
        else None
    )
    where = f"experiments/{found.experiment_id}/runs" if found else "experiments"
    return f"{server.rstrip('/')}/#/{where}?workflowType=machine_learning"


UI_RECORD = "mlflow-ui.json"  # beside the local store: the address `make ui` serves it at
DEFAULT_UI = "http://127.0.0.1:5000"


def record_ui(tracking_uri: str, address: str, store_dir: str | Path) -> None:
    """Note that the UI at `address` serves `tracking_uri` (what `make ui` starts), so runs print links to it."""
    folder = Path(store_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / UI_RECORD).write_text(json.dumps({"store": redact_url(tracking_uri), "address": address}))


def ui_address(tracking_uri: str, store_dir: str | Path) -> str:
    """The UI that shows `tracking_uri`'s runs: a tracking server is its own; a local store's is where `make ui` last
    served it (`record_ui`), else `make ui`'s default address."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri
    try:
        record = json.loads((Path(store_dir).expanduser() / UI_RECORD).read_text())
    except (OSError, ValueError):
        return DEFAULT_UI
    same = isinstance(record, dict) and record.get("store") == redact_url(tracking_uri)
    return str(record["address"]) if same else DEFAULT_UI
