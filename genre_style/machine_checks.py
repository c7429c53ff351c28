"""What the machine must offer before heavy imports: a writable output folder with free space, a tracking server that
answers, the data root and its genres. Each fails in a second with one line naming the culprit and the fix."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from genre_style.errors import UserError, say_error


def check_environment(cfg: DictConfig) -> None:
    """What the machine must offer before heavy imports: a writable output folder, a tracking server that
    answers, the data root and genres."""
    check_output_root(cfg)
    _check_tracking_server(cfg)
    if OmegaConf.select(cfg, "data.rendered") is not None:  # rendered in prepare_data: check the renderer is there
        from genre_style.data.rendered import check_installed

        check_installed()
    elif OmegaConf.select(cfg, "data") is not None and OmegaConf.select(cfg, "data.source.synthetic") is None:
        from genre_style.data.corpus import resolve_genres

        # Raises a UserError naming the path and how to get GTZAN, or the unknown genre and those found.
        genres: Any = (
            OmegaConf.to_object(cfg.data.source.genres) if OmegaConf.is_list(cfg.data.source.genres) else cfg.data.source.genres
        )
        resolve_genres(cfg.data.source.root, genres, OmegaConf.select(cfg, "data.source.kind"))


def _check_tracking_server(cfg: DictConfig) -> None:
    """A tracking server that does not answer stops the job here, in a second, before heavy imports."""
    from genre_style.tracking.mlflow_store import check_tracking_server, resolve_tracking_uri

    if OmegaConf.select(cfg, "logger.mlflow") is None:
        return
    uri = resolve_tracking_uri(OmegaConf.select(cfg, "logger.mlflow.tracking_uri"), ".")
    if uri.startswith(("http://", "https://")):
        check_tracking_server(uri)


def check_output_root(cfg: DictConfig) -> None:
    """Fail before any work if runs, caches and the local store cannot be written."""
    import shutil
    import tempfile
    from pathlib import Path

    root = OmegaConf.select(cfg, "paths.output_root")
    if root is None:
        return
    root = Path(root)
    fix = "point GENRE_STYLE_OUTPUTS (or paths.output_root=...) at a writable folder with free space"
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to the output folder {root} ({exc.strerror or exc})", fix) from None
    min_free_mb = OmegaConf.select(cfg, "paths.min_free_mb") or 0
    free_mb = shutil.disk_usage(root).free / 2**20
    if free_mb < min_free_mb:
        raise UserError(
            f"only {free_mb:.0f} MB free under {root}; a run needs at least {min_free_mb} MB (paths.min_free_mb)", fix
        )


class OutputFolderCheck(Callback):
    """A Hydra callback: an output folder that can't be written stops the command with one line, before Hydra's
    own mkdir of the run folder fails with a traceback."""

    def _check(self, config: DictConfig) -> None:
        try:
            check_output_root(config)
        except UserError as exc:
            sys.exit(say_error(exc))

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)
