"""A console where each line says something once: the frameworks' own handlers and tips out of the way."""

from __future__ import annotations

import logging
import warnings


def quiet_console() -> None:
    """Call after Lightning and MLflow are imported (they add their handlers on import).

    - Lightning's `lightning` logger has a console handler of its own besides Hydra's root one: every Lightning line
      came twice. It goes; the lines reach the console (and the job's log file) through Hydra's handlers.
    - Lightning's "Tip: try litlogger" advertisement goes.
    - The warnings MLflow gives about choices made here on purpose (integer columns in a dataset table; a model that
      takes files or waveforms: silenced where it is defined, `tracking.pyfunc_model`) go, and Lightning's
      deprecation notice about its own use of torch; others stay.
      (MLflow's INFO chatter is quieted where MLflow is imported: `tracking.logger.quiet_mlflow`.)
    """
    logging.getLogger("lightning").handlers.clear()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda record: "Tip:" not in record.getMessage())
    for message in (
        "Hint: Inferred schema contains integer column",
        "The specified dataset source can be interpreted",
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    ):  # the last: Lightning 2.6 on torch 2.13
        warnings.filterwarnings("ignore", message=f".*{message}")  # MLflow colours some of them: match past the codes
