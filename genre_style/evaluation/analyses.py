"""The evaluations after training, as a registry: each analysis is one function registered with `@analysis(...)`,
declaring the metrics it logs (names from `genre_style/metric_names.py`), the `evaluation.<key>` settings it takes and
the switch that turns it off (`evaluation.<switch>=false`). `evaluation/evaluate.py` runs every registered one that applies, in registration order;
a new one is its function (in any module imported before training) and, for its settings, a key under `evaluation:`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from genre_style.errors import UserError


@dataclass
class Evaluated:
    """What an analysis reads: the best model, its outputs per split (`logits`, `embedding`, `y`, `track`, ...), each
    split's raw inputs as vectors, the genre and track names, and where to write plots and reports."""

    model: Any
    outputs: dict[str, dict[str, Any]]
    raw: dict[str, Any]
    genres: list[str]
    track_ids: list[str]
    out_dir: Path
    title: str
    data: Any = None  # the data module (its clip table, splits, files): for analyses that read the songs again


AnalysisFunction = Callable[..., dict[str, float]]


@dataclass(frozen=True)
class Analysis:
    """A registered evaluation: `run(evaluated, **settings)` returns `<split>/<metric>` figures; `metrics` names them
    (metric_names.py, without the split and space); `settings` are the `evaluation.<key>`s passed to it; `switch`, if
    set, is the `evaluation.<switch>` that turns it off (false); `applies(model)` says whether it means anything for
    the model (song accuracy needs a classifier)."""

    name: str
    run: AnalysisFunction
    metrics: tuple[str, ...]
    settings: tuple[str, ...]
    switch: str | None
    applies: Callable[[Any], bool]


ANALYSES: dict[str, Analysis] = {}


def analysis(
    name: str,
    *,
    metrics: tuple[str, ...] = (),
    settings: tuple[str, ...] = (),
    switch: str | None = None,
    applies: Callable[[Any], bool] = lambda model: True,
) -> Callable[[AnalysisFunction], AnalysisFunction]:
    """Register an analysis under `name`."""

    def register(fn: AnalysisFunction) -> AnalysisFunction:
        if name in ANALYSES and ANALYSES[name].run is not fn:
            raise ValueError(f"an evaluation named {name!r} is already registered ({ANALYSES[name].run.__qualname__})")
        ANALYSES[name] = Analysis(name, fn, tuple(metrics), tuple(settings), switch, applies)
        return fn

    return register


def known_settings() -> set[str]:
    """Every `evaluation.<key>` some registered analysis reads."""
    return {key for a in ANALYSES.values() for key in (*a.settings, *([a.switch] if a.switch else []))}


def check_settings(settings: Any, elsewhere: tuple[str, ...] = ()) -> None:
    """A UserError naming the first `evaluation.<key>` no registered analysis reads (`elsewhere`: keys the training
    run reads itself). Asked by the config check, before training, and again here, for callers of `run_analyses`."""
    unknown = sorted(set(settings) - known_settings() - set(elsewhere))
    if unknown:
        raise UserError(
            f"evaluation.{unknown[0]} is not a setting of any evaluation",
            f"use one of {sorted(known_settings() | set(elsewhere))} (evaluation/analyses.py lists who reads each)",
        )


def run_analyses(evaluated: Evaluated, settings: dict[str, Any]) -> dict[str, float]:
    """Every registered analysis that applies and is not switched off, in registration order; their figures merged.
    A setting no analysis reads is a UserError naming the ones that exist."""
    check_settings(settings)
    metrics: dict[str, float] = {}
    for entry in ANALYSES.values():
        if (entry.switch and not settings.get(entry.switch, True)) or not entry.applies(evaluated.model):
            continue
        metrics.update(entry.run(evaluated, **{key: settings[key] for key in entry.settings if key in settings}))
    return metrics
