"""Embedding quality in numbers: how well an embedding space separates genres, beyond PCA pictures.

For each space (raw input, bottleneck or hidden layer, logits) and each evaluated split: the
silhouette score of the genre clusters, the accuracy of a k-nearest-neighbour vote with neighbours
from the train split, and of a linear probe (logistic regression fitted on train embeddings).
"""

from __future__ import annotations

import numpy as np

from genre_style.metric_names import KNN_ACC, PROBE_ACC, SILHOUETTE, key


def embedding_scores(
    train: np.ndarray,
    train_labels: np.ndarray,
    others: dict[str, tuple[np.ndarray, np.ndarray]],
    space: str,
    k: int = 10,
    seed: int = 0,
) -> dict[str, float]:
    """`{<split>/silhouette_<space>, <split>/knn_acc_<space>, <split>/probe_acc_<space>}` for each split in `others`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=min(k, len(train)))).fit(train, train_labels)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(train, train_labels)
    scores = {}
    for split, (points, labels) in others.items():
        if len(np.unique(labels)) > 1 and len(points) > len(np.unique(labels)):
            sample = min(len(points), 2000)
            scores[key(split, SILHOUETTE, space)] = float(silhouette_score(points, labels, sample_size=sample, random_state=seed))
        scores[key(split, KNN_ACC, space)] = float((knn.predict(points) == labels).mean())
        scores[key(split, PROBE_ACC, space)] = float((probe.predict(points) == labels).mean())
    return scores


def track_level(logits: np.ndarray, labels: np.ndarray, tracks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Song-level predictions, each song's verdict as `inference.song_probabilities` gives it (what `predict` says).
    Returns (true, predicted) per track."""
    from genre_style.inference import song_probabilities

    order = np.unique(tracks)
    true = np.array([np.bincount(labels[tracks == t]).argmax() for t in order])
    predicted = np.array([song_probabilities(logits[tracks == t]).argmax() for t in order])
    return true, predicted
