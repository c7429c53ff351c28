"""Figures a person reads: confusion matrix, PCA of an embedding space, learning curves.

Every genre keeps one colour across all plots and runs, from a palette colour-blind readers can tell apart:
Okabe and Ito's eight colours and two of Paul Tol's (wine, teal) for GTZAN's ten genres.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: plots are files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# The paper's genres (classical, jazz, pop, metal) and the dev set's (classical, jazz, rock) get the most distinct.
GENRE_COLORS = {
    "blues": "#56B4E9",
    "classical": "#0072B2",
    "country": "#F0E442",
    "disco": "#882255",
    "hiphop": "#44AA99",
    "jazz": "#E69F00",
    "metal": "#000000",
    "pop": "#CC79A7",
    "reggae": "#D55E00",
    "rock": "#009E73",
}
OTHER_COLORS = ("#332288", "#999933", "#AA4499", "#117733", "#88CCEE", "#DDCC77", "#CC6677", "#999999")  # Tol's muted


def genre_colors(genres: Sequence[str]) -> dict[str, str]:
    """Each genre's colour: GTZAN's own always the same; other names get the rest in order (repeating past eight)."""
    others = iter(OTHER_COLORS * (1 + len(genres) // len(OTHER_COLORS)))
    return {g: GENRE_COLORS[g] if g in GENRE_COLORS else next(others) for g in genres}


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def confusion_matrix_plot(counts: np.ndarray, genres: Sequence[str], path: str | Path, title: str) -> Path:
    """Counts in each cell, shaded by the share of the true genre's clips (rows sum to 1)."""
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(genres) + 2.5, 1.1 * len(genres) + 1.8))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(genres)):
        for j in range(len(genres)):
            ax.text(
                j,
                i,
                f"{counts[i, j]}\n{shares[i, j]:.0%}",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if shares[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(len(genres)), genres, rotation=30, ha="right")
    ax.set_yticks(range(len(genres)), genres)
    ax.set_xlabel("predicted genre")
    ax.set_ylabel("true genre")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true genre")
    return _save(fig, path)


def pca_plot(points: np.ndarray, labels: np.ndarray, genres: Sequence[str], path: str | Path, title: str, seed: int = 0) -> Path:
    """2-D PCA scatter of `points`, one colour per genre, with the explained variance on the axes."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    if len(points) > 3000:  # a readable scatter, not a blot
        keep = rng.choice(len(points), 3000, replace=False)
        points, labels = points[keep], labels[keep]
    pca = PCA(n_components=2, random_state=seed).fit(points)
    xy = pca.transform(points)
    colors = genre_colors(genres)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    for i, genre in enumerate(genres):
        mask = labels == i
        ax.scatter(xy[mask, 0], xy[mask, 1], s=8, alpha=0.6, color=colors[genre], label=f"{genre} ({mask.sum()})")
    var = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC 1 ({var[0]:.1%} of variance)")
    ax.set_ylabel(f"PC 2 ({var[1]:.1%} of variance)")
    ax.set_title(title)
    ax.legend(title="genre", markerscale=2, fontsize=8)
    return _save(fig, path)


def learning_curves_plot(history: list[dict[str, float]], path: str | Path, title: str, best_epoch: int | None = None) -> Path:
    """Loss and accuracy per epoch, train against val; a line at the best epoch (the checkpoint evaluated)."""
    panels = [p for p in ("loss", "acc", "recon") if any(f"train/{p}" in h or f"val/{p}" in h for h in history)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    epochs = [h["epoch"] for h in history]
    for ax, panel in zip(axes[0], panels):
        for stage, style in (("train", "-"), ("val", "--")):
            values = [h.get(f"{stage}/{panel}", np.nan) for h in history]
            ax.plot(epochs, values, style, marker=".", label=stage)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="#D55E00", lw=1, ls=":", label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel({"loss": "loss", "acc": "accuracy", "recon": "reconstruction ||x - x̂||²"}[panel])
        ax.set_title(panel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return _save(fig, path)


def interpolation_plot(
    reconstructions: np.ndarray,
    path_2d: np.ndarray,
    background: np.ndarray,
    background_labels: np.ndarray,
    genres: Sequence[str],
    endpoints: tuple[str, str],
    path: str | Path,
    title: str,
) -> Path:
    """Decoded points along a straight line between two tracks' codes, and that line in PCA space."""
    colors = genre_colors(genres)
    steps = len(reconstructions)
    fig = plt.figure(figsize=(12, 5.5))
    grid = fig.add_gridspec(steps, 2, width_ratios=[1.3, 1])
    if reconstructions.ndim == 2:  # decoded feature vectors: one row each, top to bottom (a row of line plots said nothing)
        ax = fig.add_subplot(grid[:, 0])
        change = reconstructions - reconstructions.mean(axis=0, keepdims=True)  # what moves along the path, not the clip
        limit = float(np.abs(change).max()) or 1.0
        image = ax.imshow(
            change,
            aspect="auto",
            cmap="RdBu_r",
            vmin=-limit,
            vmax=limit,
            interpolation="nearest",
            extent=(0, reconstructions.shape[1], steps - 0.5, -0.5),
        )
        ax.set_yticks(range(steps), [f"{i / (steps - 1):.2f}" for i in range(steps)])
        ax.set_ylabel(f"{endpoints[0]} (0) -> {endpoints[1]} (1)")
        ax.set_xlabel("input feature (pooled samples)")
        ax.set_title("decoded clips along the path, minus their mean: what the path changes", fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.04, label="decoded value - mean over the path")
    for i, recon in enumerate(reconstructions if reconstructions.ndim == 3 else []):  # decoded (bands, frames) maps
        ax = fig.add_subplot(grid[i, 0])
        ax.imshow(recon, aspect="auto", origin="lower", cmap="magma")
        ax.set_yticks([])
        if i < steps - 1:
            ax.set_xticks([])
        ax.set_ylabel(f"{i / (steps - 1):.2f}", rotation=0, labelpad=18, fontsize=8)
        if i == 0:
            ax.set_title(f"decoded clips, {endpoints[0]} (0) -> {endpoints[1]} (1)", fontsize=10)
        if i == steps - 1:
            ax.set_xlabel("frame (mel bands upwards)")
    ax = fig.add_subplot(grid[:, 1])
    for i, genre in enumerate(genres):
        mask = background_labels == i
        ax.scatter(background[mask, 0], background[mask, 1], s=6, alpha=0.35, color=colors[genre], label=genre)
    ax.plot(path_2d[:, 0], path_2d[:, 1], "k-", lw=1.5)
    ax.scatter(path_2d[:, 0], path_2d[:, 1], c=np.linspace(0, 1, steps), cmap="viridis", s=40, zorder=3, edgecolors="k")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title("the path through the bottleneck (PCA of test codes)", fontsize=10)
    ax.legend(fontsize=8, markerscale=2)
    fig.suptitle(title)
    return _save(fig, path)


def latent_mi_plot(mi: np.ndarray, entropy: float, path: str | Path, title: str) -> Path:
    """Mutual information of each latent dimension with genre, the two largest (MIG's gap) highlighted."""
    order = np.argsort(mi)[::-1]
    colors = ["#d55e00" if d in order[:2] else "#0072b2" for d in range(len(mi))]
    fig, ax = plt.subplots(figsize=(max(6, len(mi) * 0.12 + 2), 3.5))
    ax.bar(np.arange(len(mi)), mi, color=colors, width=0.8)
    ax.axhline(entropy, color="k", ls="--", lw=1, label=f"H(genre) = {entropy:.2f} nats")
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("I(z_d; genre) [nats]")
    gap = (mi[order[0]] - (mi[order[1]] if len(mi) > 1 else 0.0)) / entropy if entropy else 0.0
    ax.set_title(f"{title}\nMIG = {gap:.3f} (dimensions {', '.join(str(d) for d in order[:2])} in orange)", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def traversal_plot(decoded: np.ndarray, values: np.ndarray, dim: int, path: str | Path, title: str) -> Path:
    """Decoded input features while one latent dimension moves and the others stay at the test mean."""
    steps = len(decoded)
    if decoded.ndim == 3:  # (bands, frames) maps: one image per step
        fig, axes = plt.subplots(1, steps, figsize=(2.0 * steps, 2.8), sharey=True)
        for ax, image, value in zip(np.atleast_1d(axes), decoded, values):
            ax.imshow(image, aspect="auto", origin="lower", cmap="magma")
            ax.set_title(f"z[{dim}] = {value:.2f}", fontsize=8)
            ax.set_xticks([])
        np.atleast_1d(axes)[0].set_ylabel("mel band")
    else:  # vectors: one row per step
        fig, ax = plt.subplots(figsize=(10, 0.4 * steps + 1.5))
        ax.imshow(decoded.reshape(steps, -1), aspect="auto", cmap="magma", interpolation="nearest")
        ax.set_yticks(range(steps), [f"{v:.2f}" for v in values], fontsize=8)
        ax.set_ylabel(f"z[{dim}]")
        ax.set_xlabel("input feature")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
