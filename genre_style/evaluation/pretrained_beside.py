"""The off-the-shelf embedding beside the model, on the run's own data: every training run's final figures show what a
frozen pretrained network (`evaluation.pretrained_brackets`, frozen musicnn by default) plus a linear probe gets on
the same songs, splits and clips, so nobody trains for a figure an off-the-shelf model already beats.

For each bracket that can be computed here (evaluation/pretrained_brackets.py: a missing package is a one-line note),
its embedding of every clip of the run's clip table (musicnn: a 3-s patch from each clip's start; cached per clip, so
a second run on the same data costs only the probe) feeds a standardised logistic regression fitted on the train
split, scored on val and test:

- `<split>/pretrained_probe_acc_<bracket>`: clip accuracy, beside the model's `acc` (and `probe_acc_<space>`, the same
  probe on the model's own embedding, where `evaluation.embedding_metrics` is on);
- `<split>/pretrained_track_acc_<bracket>`: song accuracy, each song's verdict from its clips' probe log-probabilities
  as `inference.song_probabilities` gives the model's (beside `track_acc`).

`<bracket>` is the bracket's name as a metric suffix (`musicnn_msd_musicnn_penultimate`: `bracket_suffix`).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from genre_style.errors import UserError
from genre_style.evaluation.analyses import Evaluated, analysis
from genre_style.metric_names import PRETRAINED_PROBE_ACC, PRETRAINED_TRACK_ACC, key

log = logging.getLogger(__name__)


def bracket_suffix(name: str) -> str:
    """A bracket's name as a metric suffix: `musicnn MSD_musicnn penultimate` -> `musicnn_msd_musicnn_penultimate`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def probe_scores(
    values: np.ndarray, labels: np.ndarray, tracks: np.ndarray, indices: dict[str, np.ndarray], suffix: str
) -> dict[str, float]:
    """A standardised logistic regression fitted on `values[indices["train"]]` (`values` `[n_clips, D]`, one row per
    clip of the table; `labels`, `tracks` `[n_clips]`), scored on val and test clips and songs."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from genre_style.evaluation.embedding_metrics import track_level

    train = indices["train"]
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(values[train], labels[train])
    scores = {}
    for split in ("val", "test"):
        rows = indices[split]
        if len(rows) == 0:
            continue
        log_probs = np.full((len(rows), int(labels.max()) + 1), -np.inf)
        log_probs[:, probe.classes_] = probe.predict_log_proba(values[rows])  # genres absent from train: never chosen
        scores[key(split, PRETRAINED_PROBE_ACC, suffix)] = float((log_probs.argmax(axis=1) == labels[rows]).mean())
        true, predicted = track_level(np.maximum(log_probs, -1e9), labels[rows], tracks[rows])
        scores[key(split, PRETRAINED_TRACK_ACC, suffix)] = float((true == predicted).mean())
    return scores


@analysis("pretrained_beside", metrics=(PRETRAINED_PROBE_ACC, PRETRAINED_TRACK_ACC), settings=("pretrained_brackets",))
def pretrained_beside(e: Evaluated, pretrained_brackets: Any = ()) -> dict[str, float]:
    """Each named bracket's probe on the run's splits (nothing without a data module or brackets)."""
    from genre_style.evaluation.pretrained_brackets import bracket_embeddings, parse_all

    data = e.data
    brackets = parse_all(list(pretrained_brackets) if not isinstance(pretrained_brackets, str) else pretrained_brackets)
    if data is None or not brackets or getattr(data, "table", None) is None:
        return {}
    table = data.table
    if len(np.unique(table.labels[data.indices["train"]])) < 2:
        log.info("pretrained brackets left out: the train split holds fewer than two genres")
        return {}
    cached = data.cache_key if data.cache_dir and data.cache_key not in ("in-memory", "no-cache") else None
    done = []
    for bracket in brackets:  # one that cannot be computed (a HEAR module that fails) is a note: the run's figures stand
        try:
            done += bracket_embeddings(
                [bracket], data.root, table, cached, data.spec, data.cache_dir, getattr(data, "source", None)
            )[0]
        except UserError as exc:
            log.warning("the %s bracket is left out: %s (%s)", bracket.name, exc.problem, exc.fix)
    scores: dict[str, float] = {}
    for name, _, values in done:
        suffix = bracket_suffix(name)
        found = probe_scores(values, table.labels, table.track_index, data.indices, suffix)
        scores.update(found)
        clips, songs = (found.get(key("test", m, suffix)) for m in (PRETRAINED_PROBE_ACC, PRETRAINED_TRACK_ACC))
        if clips is not None and songs is not None:
            log.info(
                "beside the model, frozen %s + a linear probe: test clips %.1f %%, songs %.1f %%", name, 100 * clips, 100 * songs
            )
    return scores
