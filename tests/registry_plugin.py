"""Registrations from outside the package, loaded by a run with `+plugins=[tests.registry_plugin]`
(tests/unit/data/test_data_registries.py): a split mode and an evaluation, each one function."""

from __future__ import annotations

import numpy as np

from genre_style.data.splits import SPLIT_NAMES, SplitInput, split_mode
from genre_style.evaluation.analyses import Evaluated, analysis


@split_mode("by_number")
def by_number(data: SplitInput) -> dict[str, np.ndarray]:
    """tracks by their number: 0-3 train, 4 val, the rest test."""
    number = np.array([int(t.rsplit(".", 1)[1]) for t in data.table.track_ids])[data.track_index]
    which = np.where(number < 4, 0, np.where(number == 4, 1, 2))
    return {name: np.flatnonzero(which == i) for i, name in enumerate(SPLIT_NAMES)}


@analysis("centroid_spread", metrics=("spread",), settings=("spread_scale",), switch="centroid_spread")
def centroid_spread(e: Evaluated, spread_scale: float = 1.0) -> dict[str, float]:
    """How far apart the genres' mean test embeddings lie (times `spread_scale`)."""
    codes, y = e.outputs["test"]["embedding"], e.outputs["test"]["y"]
    centroids = np.stack([codes[y == g].mean(axis=0) for g in np.unique(y)])
    return {"test/spread": spread_scale * float(np.linalg.norm(centroids - centroids.mean(axis=0), axis=1).mean())}
