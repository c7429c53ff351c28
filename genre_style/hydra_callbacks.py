"""Hydra callbacks: checks that must run before Hydra itself writes anything (it creates the run folder)."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class OutputFolderCheck(Callback):
    """An output folder that can't be written stops the command with one line, before Hydra's own mkdir fails."""

    def _check(self, config: DictConfig) -> None:
        from genre_style.config_checks import check_output_root
        from genre_style.errors import UserError

        try:
            check_output_root(config)
        except UserError as exc:
            print(f"genre-style: error: {exc}", file=sys.stderr)
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)
