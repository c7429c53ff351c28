"""Shared helpers for the benchmark scripts: the project's config, in-memory clips, result printing."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def compose(overrides: Sequence[str] = ()) -> Any:
    """The config `python -m genre_style.train` would use, composed without running it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        # Outside a Hydra app ${hydra:...} does not resolve: pin the paths that use it.
        fixed = [f"paths.output_dir={REPO / 'outputs' / 'bench'}"]
        return hydra_compose(config_name="train", overrides=fixed + list(overrides), return_hydra_config=False)


def clip_table(
    n_clips: int = 8000,
    dim: int = 500,
    genres: Sequence[str] = ("classical", "jazz", "pop", "metal"),
    seed: int = 0,
    shape: Sequence[int] | None = None,
):
    """8000 clips in R^500 (the paper's size), 20 per track, as a ClipTable in memory; `shape` gives each clip
    another shape (e.g. a (64, 79) log-mel map)."""
    shape = tuple(shape or (dim,))
    from genre_style.data.clip_table import ClipTable

    rng = np.random.default_rng(seed)
    n_tracks = n_clips // 20
    track_labels = np.arange(n_tracks) % len(genres)
    track_index = np.repeat(np.arange(n_tracks), 20)
    labels = track_labels[track_index]
    features = (
        0.05 * rng.standard_normal((n_clips, *shape), dtype=np.float32) + 0.02 * labels.reshape(-1, *([1] * len(shape)))
    ).astype(np.float32)
    return ClipTable(
        features=features,
        labels=labels.astype(np.int64),
        track_index=track_index.astype(np.int64),
        genres=list(genres),
        track_ids=[f"t{i:05d}" for i in range(n_tracks)],
        track_labels=track_labels.astype(np.int64),
    )


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def report(name: str, rows: list[dict], headers: Sequence[str]) -> None:
    """A table for people, then one JSON line for machines."""
    widths = [max(len(h), *(len(_fmt(r.get(h))) for r in rows)) for h in headers]
    print(f"\n{name}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for row in rows:
        print("  ".join(_fmt(row.get(h)).ljust(w) for h, w in zip(headers, widths)))
    print(json.dumps({"benchmark": name, "results": rows}))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)
