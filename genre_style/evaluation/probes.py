"""Frozen clip embeddings scored as the field scores them (HEAR's and MARBLE's probes, CLMR's linear evaluation):
a linear probe (clip and song accuracy), k-nearest neighbours, N-way K-shot prototypes, and same-song retrieval,
over repeated track-level splits, beside two brackets computed on the same clips: `features=stats` (MFCC and
log-mel statistics) and the same architecture with random weights.

Every protocol reads `ClipEmbeddings` (one row per clip, with its genre and song) and never trains the model:
what it scores is what the embedding already carries. Splits are by song and stratified by genre, so no song
has clips on both sides; every embedding is scored on the same splits, so differences are paired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from genre_style.evaluation.stats import Summary, paired_difference, percent_cell, summarize
from genre_style.inference import song_probabilities

PROTOCOL_METRICS = ("probe_clip_acc", "probe_song_acc", "knn_acc", "proto_1shot_acc", "proto_5shot_acc")
RETRIEVAL_METRICS = ("same_song_p_at_5", "same_song_map")
METRIC_NAMES = {
    "probe_clip_acc": "linear probe, clips",
    "probe_song_acc": "linear probe, songs",
    "knn_acc": "k-NN, clips",
    "proto_1shot_acc": "1-shot prototypes",
    "proto_5shot_acc": "5-shot prototypes",
    "same_song_p_at_5": "same-song P@5",
    "same_song_map": "same-song mAP",
}


def metric_key(embedding: str) -> str:
    """An embedding's name as MLflow accepts it in a metric key (`features=stats` -> `features_stats`)."""
    return "".join(c if c.isalnum() or c in "-." else "_" for c in embedding)


@dataclass
class ClipEmbeddings:
    """Clip embeddings `x` `[n, D]` with each clip's genre `labels` `[n]` and song `tracks` `[n]` (any ids)."""

    name: str
    x: np.ndarray
    labels: np.ndarray
    tracks: np.ndarray

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=np.float64)
        if not (len(self.x) == len(self.labels) == len(self.tracks)):
            raise ValueError(f"{self.name}: {len(self.x)} embeddings, {len(self.labels)} labels, {len(self.tracks)} tracks")


@dataclass
class DownstreamResult:
    """Per embedding, per metric: the value on each split (retrieval: one value, no split)."""

    genres: list[str]
    n_songs: int
    n_clips: int
    per_split: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def summary(self, embedding: str, metric: str) -> Summary:
        return summarize(self.per_split[embedding][metric])

    def difference(self, a: str, b: str, metric: str) -> Summary | None:
        """a - b over the splits both were scored on (the same splits: a paired difference)."""
        return paired_difference(dict(enumerate(self.per_split[a][metric])), dict(enumerate(self.per_split[b][metric])))

    def metrics(self, prefix: str) -> dict[str, float]:
        """Flat means for a tracker: `<prefix>/<metric_key(embedding)>/<metric>`."""
        flat = {}
        for embedding, values in self.per_split.items():
            for metric in values:
                flat[f"{prefix}/{metric_key(embedding)}/{metric}"] = self.summary(embedding, metric).mean
        return flat

    def to_dict(self) -> dict[str, Any]:
        return {"genres": self.genres, "n_songs": self.n_songs, "n_clips": self.n_clips, "per_split": self.per_split}

    def markdown(self, reference: str = "model") -> str:
        """One row per embedding (mean [95 % interval] over splits, in %), then the reference minus each other."""
        names = list(self.per_split)
        metrics = [m for m in (*PROTOCOL_METRICS, *RETRIEVAL_METRICS) if m in self.per_split[names[0]]]
        header = "| embedding | " + " | ".join(METRIC_NAMES[m] for m in metrics) + " |"
        lines = [header, "|" + "---|" * (len(metrics) + 1)]
        for name in names:
            lines.append(f"| {name} | " + " | ".join(percent_cell(self.summary(name, m)) for m in metrics) + " |")
        for other in names:
            if other == reference or reference not in self.per_split:
                continue
            cells = []
            for m in metrics:
                diff = self.difference(reference, other, m)
                cells.append("" if diff is None else percent_cell(diff, signed=True))
            lines.append(f"| {reference} - {other} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


# --- splits ----------------------------------------------------------------------------------------------------


def song_splits(
    tracks: np.ndarray, labels: np.ndarray, n_splits: int, test_share: float, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n_splits` random song-level splits, stratified by genre: (train songs, test songs) ids each; every genre
    keeps at least one song on each side."""
    song_ids, first = np.unique(tracks, return_index=True)
    song_genre = labels[first]
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(n_splits):
        train, test = [], []
        for genre in np.unique(song_genre):
            songs = rng.permutation(song_ids[song_genre == genre])
            n_test = min(len(songs) - 1, max(1, int(round(test_share * len(songs)))))
            test += list(songs[:n_test])
            train += list(songs[n_test:])
        splits.append((np.array(train), np.array(test)))
    return splits


# --- protocols ---------------------------------------------------------------------------------------------------


def _standardized(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-8
    return (x - mean) / std


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


def linear_probe(e: ClipEmbeddings, train: np.ndarray, test: np.ndarray, C: float = 1.0) -> tuple[float, float]:
    """(clip accuracy, song accuracy): logistic regression on the standardised train clips; a song's verdict is
    `inference.song_probabilities` of its clips' logits, as everywhere in the project."""
    from sklearn.linear_model import LogisticRegression

    x = _standardized(e.x, train)
    classifier = LogisticRegression(C=C, max_iter=2000).fit(x[train], e.labels[train])
    logits = classifier.decision_function(x[test])
    if logits.ndim == 1:  # binary: scikit-learn gives one score
        logits = np.stack([-logits / 2, logits / 2], axis=1)
    classes = classifier.classes_
    clip_acc = float((classes[logits.argmax(axis=1)] == e.labels[test]).mean())
    tracks, labels = e.tracks[test], e.labels[test]
    verdicts = [classes[song_probabilities(logits[tracks == t]).argmax()] == labels[tracks == t][0] for t in np.unique(tracks)]
    return clip_acc, float(np.mean(verdicts))


def knn_accuracy(e: ClipEmbeddings, train: np.ndarray, test: np.ndarray, k: int = 10) -> float:
    """Clip accuracy of a majority vote among the k nearest train clips (cosine, standardised embeddings)."""
    x = _unit(_standardized(e.x, train))
    similarity = x[test] @ x[train].T
    nearest = np.argpartition(-similarity, min(k, similarity.shape[1] - 1), axis=1)[:, :k]
    votes = e.labels[train][nearest]
    n_genres = int(e.labels.max()) + 1
    counts = np.stack([(votes == g).sum(axis=1) for g in range(n_genres)], axis=1)
    return float((counts.argmax(axis=1) == e.labels[test]).mean())


def prototype_accuracy(
    e: ClipEmbeddings, train_songs: np.ndarray, test: np.ndarray, shots: int, episodes: int, rng: np.random.Generator
) -> float:
    """N-way K-shot (N = every genre): per episode, K support clips of each genre, each from a different train
    song where there are enough; each test clip goes to the nearest prototype (cosine to the support's mean).
    The mean accuracy over `episodes`."""
    train = np.isin(e.tracks, train_songs)
    x = _unit(_standardized(e.x, train))
    genres = np.unique(e.labels)
    accuracies = []
    for _ in range(episodes):
        prototypes = []
        for genre in genres:
            songs = np.unique(e.tracks[train & (e.labels == genre)])
            picked = rng.choice(songs, size=shots, replace=len(songs) < shots)
            clips = [rng.choice(np.flatnonzero(train & (e.tracks == s))) for s in picked]
            prototypes.append(_unit(x[clips].mean(axis=0, keepdims=True))[0])
        predicted = genres[(x[test] @ np.stack(prototypes).T).argmax(axis=1)]
        accuracies.append(float((predicted == e.labels[test]).mean()))
    return float(np.mean(accuracies))


def same_song_retrieval(e: ClipEmbeddings, k: int = 5, chunk: int = 512) -> tuple[float, float]:
    """(precision@k, mean average precision) of retrieving a clip's own song among all other clips (cosine):
    how much of a song's style the embedding keeps, with no label at all."""
    x = _unit(e.x - e.x.mean(axis=0))
    precisions, aps = [], []
    for start in range(0, len(x), chunk):
        similarity = x[start : start + chunk] @ x.T
        for row, query in enumerate(range(start, min(start + chunk, len(x)))):
            similarity[row, query] = -np.inf  # never itself
            order = np.argsort(-similarity[row])[:-1]
            relevant = e.tracks[order] == e.tracks[query]
            if not relevant.any():
                continue
            precisions.append(relevant[:k].mean())
            hits = np.cumsum(relevant)
            aps.append(float((hits[relevant] / (np.flatnonzero(relevant) + 1)).mean()))
    return float(np.mean(precisions)), float(np.mean(aps))


def score_embeddings(
    embeddings: Sequence[ClipEmbeddings],
    genres: Sequence[str],
    n_splits: int = 10,
    test_share: float = 0.3,
    episodes: int = 100,
    k: int = 10,
    seed: int = 0,
) -> DownstreamResult:
    """Every protocol on every embedding, on the same `n_splits` song splits (and the same few-shot episodes)."""
    first = embeddings[0]
    splits = song_splits(first.tracks, first.labels, n_splits, test_share, seed)
    result = DownstreamResult(list(genres), len(np.unique(first.tracks)), len(first.tracks))
    for e in embeddings:
        if not (np.array_equal(e.tracks, first.tracks) and np.array_equal(e.labels, first.labels)):
            raise ValueError(f"{e.name} is not on the same clips as {first.name}")
        values: dict[str, list[float]] = {m: [] for m in PROTOCOL_METRICS}
        for i, (train_songs, test_songs) in enumerate(splits):
            train, test = np.isin(e.tracks, train_songs), np.isin(e.tracks, test_songs)
            clip_acc, song_acc = linear_probe(e, train, test)
            values["probe_clip_acc"].append(clip_acc)
            values["probe_song_acc"].append(song_acc)
            values["knn_acc"].append(knn_accuracy(e, train, test, k))
            for shots in (1, 5):
                rng = np.random.default_rng([seed, i, shots])  # the same episodes for every embedding
                values[f"proto_{shots}shot_acc"].append(prototype_accuracy(e, train_songs, test, shots, episodes, rng))
        p_at_k, mean_ap = same_song_retrieval(e)
        values["same_song_p_at_5"], values["same_song_map"] = [p_at_k], [mean_ap]
        result.per_split[e.name] = values
    return result
