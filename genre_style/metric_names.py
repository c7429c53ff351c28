"""Every final metric's name, defined once: the model's test step, the evaluations after training, the report and the
run's description build or read them here, so a renamed metric is renamed everywhere (and `tests/unit/test_metric_names.py`
fails if a reader asks for a name nothing declares).

A metric is logged as `<split>/<name>` (`test/acc`), per embedding space as `<split>/<name>_<space>`
(`test/knn_acc_bottleneck`), per genre as `<split>/<name>_<genre>` (`test/f1_jazz`).
"""

from __future__ import annotations

import re

# The model's test step (models/base.py) and the final scores (evaluation/evaluate.py).
ACC = "acc"  # clip accuracy
RECON = "recon"  # mean reconstruction error (models with a decoder)
PER_CLASS = ("precision", "recall", "f1")  # per genre (`f1_jazz`) and macro-averaged (`f1_macro`)
MACRO = "macro"
# A song's verdict against its genre (evaluation/evaluate.py: song_level).
TRACK_ACC = "track_acc"
# Embedding quality, per space (evaluation/embedding_metrics.py).
SILHOUETTE = "silhouette"
KNN_ACC = "knn_acc"
PROBE_ACC = "probe_acc"
SPACES = ("raw", "hidden", "bottleneck", "logits")  # the spaces they are measured in
# Disentanglement with respect to genre (evaluation/disentanglement.py).
MIG = "mig_genre"
MAX_MI = "max_mi_genre"
ACTIVE_DIMS = "active_dims"
# A frozen pretrained network + a linear probe on the run's own splits, per bracket (evaluation/pretrained_beside.py):
# `test/pretrained_probe_acc_musicnn_msd_musicnn_penultimate`.
PRETRAINED_PROBE_ACC = "pretrained_probe_acc"
PRETRAINED_TRACK_ACC = "pretrained_track_acc"


def key(split: str, name: str, suffix: str | None = None) -> str:
    """`<split>/<name>` or `<split>/<name>_<suffix>` (a space or a genre)."""
    return f"{split}/{name}" if suffix is None else f"{split}/{name}_{suffix}"


def per_class(kind: str, genre: str) -> str:
    """A per-genre (or, with `MACRO`, macro-averaged) test-step metric's name: `f1_jazz`, `precision_macro`."""
    return f"{kind}_{genre}"


# What each name may look like once logged; readers and writers are checked against it.
_SUFFIXED = (SILHOUETTE, KNN_ACC, PROBE_ACC)
_DECLARED = re.compile(
    r"^(train|val|test)/("
    + "|".join(map(re.escape, (ACC, RECON, TRACK_ACC, MIG, MAX_MI, ACTIVE_DIMS)))
    + r"|(?:"
    + "|".join(_SUFFIXED)
    + r")_(?:"
    + "|".join(SPACES)
    + r")|(?:"
    + "|".join(PER_CLASS)
    + r")_[^/]+"
    + r"|(?:"
    + "|".join((PRETRAINED_PROBE_ACC, PRETRAINED_TRACK_ACC))
    + r")_[a-z0-9_]+)$"
)


def declared(metric: str) -> bool:
    """Whether `metric` (`test/knn_acc_bottleneck`) is a name this module defines."""
    return bool(_DECLARED.match(metric))
