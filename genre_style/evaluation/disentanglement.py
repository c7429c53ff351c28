"""How disentangled genre is in an embedding: per-dimension mutual information with the genre label, the
mutual information gap (MIG) with respect to genre, and the share of active dimensions.

MIG_genre = (I(z_a; genre) - I(z_b; genre)) / H(genre), where z_a and z_b are the two latent dimensions that
carry most information about genre (Chen et al., 2018, with genre as the one known factor). Near 1: one
dimension alone encodes genre; near 0: none, or several equally. Mutual information is estimated by binning
each dimension into equal-width bins (a plug-in estimate, in nats).
"""

from __future__ import annotations

import numpy as np

from genre_style.metric_names import ACTIVE_DIMS, MAX_MI, MIG, key


def latent_genre_mi(codes: np.ndarray, labels: np.ndarray, bins: int = 20) -> np.ndarray:
    """I(z_d; genre) for every dimension d of `codes` `[N, D]`, in nats."""
    from sklearn.metrics import mutual_info_score

    scores = np.zeros(codes.shape[1])
    for d in range(codes.shape[1]):
        column = codes[:, d]
        if np.ptp(column) == 0:
            continue  # a constant dimension carries nothing
        edges = np.histogram_bin_edges(column, bins=bins)
        scores[d] = mutual_info_score(labels, np.digitize(column, edges[1:-1]))
    return scores


def label_entropy(labels: np.ndarray) -> float:
    """H(genre) in nats."""
    counts = np.bincount(labels)
    p = counts[counts > 0] / len(labels)
    return float(-(p * np.log(p)).sum())


def mig(codes: np.ndarray, labels: np.ndarray, bins: int = 20) -> float:
    """The mutual information gap with respect to genre, in [0, 1]."""
    return information_gap(latent_genre_mi(codes, labels, bins), label_entropy(labels))


def information_gap(mi: np.ndarray, entropy: float) -> float:
    """(largest - second largest per-dimension mutual information) / H(genre)."""
    if entropy == 0 or len(mi) == 0:
        return 0.0
    top = np.sort(mi)[::-1]
    return float((top[0] - (top[1] if len(top) > 1 else 0.0)) / entropy)


def active_dims(codes: np.ndarray, threshold: float = 0.01) -> float:
    """Share of dimensions whose value varies over the data (variance > threshold, Burda et al. 2016's
    active units; for a VAE, codes are the latent means)."""
    return float((codes.var(axis=0) > threshold).mean())


def disentanglement_scores(codes_by_split: dict[str, tuple[np.ndarray, np.ndarray]], bins: int = 20) -> dict[str, float]:
    """`<split>/mig_genre`, `<split>/active_dims` and `<split>/max_mi_genre` for each split given as (codes, labels)."""
    scores = {}
    for split, (codes, labels) in codes_by_split.items():
        mi = latent_genre_mi(codes, labels, bins)
        scores[key(split, MIG)] = information_gap(mi, label_entropy(labels))
        scores[key(split, MAX_MI)] = float(mi.max()) if len(mi) else 0.0
        scores[key(split, ACTIVE_DIMS)] = active_dims(codes)
    return scores
