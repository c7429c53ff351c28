"""Lightning callbacks of this project (the rest are Lightning's own, chosen in `conf/callbacks/`)."""

from __future__ import annotations

from typing import Any


def instantiate_callbacks(cfg: Any) -> list[Any]:
    """The callbacks of `cfg.callbacks`, built; the progress bar left out where `trainer.enable_progress_bar=false`
    (Lightning refuses a progress bar callback then)."""
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import ProgressBar

    callbacks = [instantiate(node) for node in (cfg.get("callbacks") or {}).values() if node is not None]
    if cfg.trainer.get("enable_progress_bar", True):
        return callbacks
    return [c for c in callbacks if not isinstance(c, ProgressBar)]
