"""A console where each line says something once: the frameworks' own handlers and tips out of the way."""

from __future__ import annotations

import logging
import warnings


def quiet_console() -> None:
    """Call after Lightning and MLflow are imported (they add their handlers on import).

    - Lightning's `lightning` logger has a console handler of its own besides Hydra's root one: every Lightning line
      came twice. It goes; the lines reach the console (and the job's log file) through Hydra's handlers.
    - Lightning's "Tip: try litlogger" advertisement goes, and its "GPU available / TPU available" lines.
    - The warnings MLflow gives about choices made here on purpose (integer columns in a dataset table; a model that
      takes files or waveforms: silenced where it is defined, `tracking.pyfunc_model`) go, and Lightning's
      deprecation notice about its own use of torch; others stay.
      (MLflow's INFO chatter is quieted where MLflow is imported: `tracking.logger.quiet_mlflow`.)
    """
    logging.getLogger("lightning").handlers.clear()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda record: "Tip:" not in record.getMessage())
    # Which accelerators exist: the run's settings (run_info.json, MLflow's system tags) say what it used.
    hide_lightning_messages("GPU available:", "TPU available:", "HPU available:", "IPU available:")
    for message in (
        "Hint: Inferred schema contains integer column",
        "The specified dataset source can be interpreted",
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    ):  # the last: Lightning 2.6 on torch 2.13
        warnings.filterwarnings("ignore", message=f".*{message}")  # MLflow colours some of them: match past the codes


def metrics_table(metrics: dict[str, float], splits: tuple[str, ...] = ("train", "val", "test")) -> str:
    """The final figures as one compact table: a row per metric, a column per split (`-` where a split lacks it)."""
    names: list[str] = []
    for key in metrics:
        split, _, name = key.partition("/")
        if split in splits and name and name not in names:
            names.append(name)

    def cell(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"

    width = max([len("final figures"), *(len(n) + 2 for n in names)])
    rows = [f"{'final figures':<{width}}" + "".join(f"{s:>10}" for s in splits)]
    for name in names:
        rows.append(f"{'  ' + name:<{width}}" + "".join(f"{cell(metrics.get(f'{s}/{name}')):>10}" for s in splits))
    return "\n".join(rows)


_STARTS: set[str] = set()  # Lightning lines dropped by how they start ("GPU available:")
_PATHS: set[str] = set()  # checkpoint paths whose restore lines are dropped
_RESTORE_LINES = ("Restoring states from the checkpoint path at", "Loaded model weights from the checkpoint at")


def _shown(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    if message.startswith(tuple(_STARTS)):
        return False
    return not (message.startswith(_RESTORE_LINES) and any(path in message for path in _PATHS))


def hide_lightning_messages(*starts: str, checkpoint: str = "") -> None:
    """Drop Lightning's console lines that start with any of `starts`, and its restore lines ("Restoring states from
    ... <checkpoint>") naming `checkpoint` (a path that will not exist by the end); its other lines, warnings and errors
    pass whatever they contain. One filter, installed at the first call."""
    lightning = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _shown not in lightning.filters:
        lightning.addFilter(_shown)
    _STARTS.update(starts)
    if checkpoint:
        _PATHS.add(checkpoint)
