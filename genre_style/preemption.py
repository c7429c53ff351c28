"""SIGTERM and SIGINT as what they are on a cluster: pre-emption, to be resumed, not a crash and not a success.

SLURM, Kubernetes and `docker stop` send SIGTERM before they kill; Ctrl-C sends SIGINT. Either stops the run at
once with `Preempted`, which `train` turns into a KILLED MLflow run and the exact command that continues it, and
the process exits 128 + the signal's number (143, 130), as a shell reports a process the signal ended.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(BaseException):
    """Not an Exception: no `except Exception` on the way up may swallow it (Lightning's loops re-raise it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum
        self.resume_folder: Path | None = None  # set by `train` where a resume checkpoint exists


@contextmanager
def signals_stop_the_run() -> Iterator[None]:
    """Inside, the first SIGTERM or SIGINT raises `Preempted` in the main thread; later ones are ignored, so the
    clean-up (logging what was held, marking the MLflow run) is not itself interrupted."""
    received: list[int] = []

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        if len(received) == 1:
            raise Preempted(signum)

    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, stop)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def resume_advice(stop: Preempted, overrides: list[str], sweep: bool = False) -> str:
    """What to tell the user: the signal, and the command that continues the run (or the sweep)."""
    name = signal.Signals(stop.signum).name
    if sweep:
        return (
            f"stopped by {name} during a sweep's trial: rerun the same sweep command to go on (the interrupted "
            "trial is recorded as failed, finished trials are kept, the study still ends at n_trials)"
        )
    if stop.resume_folder is None:
        return f"stopped by {name} before the first resume checkpoint: rerun the command to start again"
    args = " ".join([*(o for o in overrides if not o.startswith("resume=")), f"resume={stop.resume_folder}"])
    return f"stopped by {name}; the run is resumable. Continue it with:\n  python -m genre_style.train {args}"
