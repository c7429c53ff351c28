"""After training: score the best model on every split, write plots and reports to the run folder.

Everything is written to the run folder; MLflow gets a copy from there, so a tracking failure never
loses a result.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from genre_style.data.datamodule import GenreDataModule
from genre_style.data.splits import SPLIT_NAMES
from genre_style.evaluation import plots
from genre_style.evaluation.analyses import Evaluated, analysis, run_analyses
from genre_style.metric_names import ACC, ACTIVE_DIMS, KNN_ACC, MAX_MI, MIG, PROBE_ACC, RECON, SILHOUETTE, TRACK_ACC, key
from genre_style.models.base import GenreModel

log = logging.getLogger(__name__)


def predict_split(trainer: pl.Trainer, model: GenreModel, datamodule: GenreDataModule, split: str) -> dict[str, np.ndarray]:
    """Model outputs for every clip of a split, in eval mode (dropout off), as numpy arrays."""
    batches: Any = trainer.predict(model, dataloaders=datamodule.eval_dataloader(split))
    return {key: torch.cat([b[key] for b in batches]).cpu().numpy() for key in batches[0]}


def final_metrics(outputs: dict[str, dict[str, np.ndarray]], has_classifier: bool) -> dict[str, float]:
    """The paper's Table 1 figures for the model as saved: accuracy (or reconstruction) per split."""
    metrics = {}
    for split, out in outputs.items():
        if has_classifier:
            metrics[key(split, ACC)] = float((out["logits"].argmax(axis=1) == out["y"]).mean())
        if "reconstruction_error" in out:
            metrics[key(split, RECON)] = float(out["reconstruction_error"].mean())
    return metrics


def write_confusion_matrix(counts: np.ndarray, genres: list[str], stem: Path, title: str) -> list[Path]:
    """`<stem>.png` (the plot) and `<stem>.csv` (the counts, true genre per row)."""
    png = plots.confusion_matrix_plot(counts, genres, stem.with_suffix(".png"), title)
    rows = ["true\\predicted," + ",".join(genres)] + [f"{g}," + ",".join(map(str, row)) for g, row in zip(genres, counts)]
    csv = stem.with_suffix(".csv")
    csv.write_text("\n".join(rows) + "\n")
    return [png, csv]


def write_reports(
    outputs: dict[str, dict[str, np.ndarray]],
    raw_test: np.ndarray,
    model: GenreModel,
    genres: list[str],
    history: list[dict[str, float]],
    out_dir: Path,
    title: str,
    best_epoch: int | None = None,
) -> list[Path]:
    """Confusion matrix (PNG + CSV), classification report, PCA plots and learning curves under `out_dir`."""
    from sklearn.metrics import classification_report, confusion_matrix

    test = outputs["test"]
    labels = test["y"]
    written = [plots.pca_plot(raw_test, labels, genres, out_dir / "plots/pca_raw.png", f"{title}: raw input (test clips)")]
    space = embedding_space_name(model)
    dim = test["embedding"].shape[1]
    written.append(
        plots.pca_plot(
            test["embedding"], labels, genres, out_dir / f"plots/pca_{space}.png", f"{title}: {dim}-d {space} (test clips)"
        )
    )
    if model.has_classifier:
        predicted = test["logits"].argmax(axis=1)
        written.append(
            plots.pca_plot(
                test["logits"], labels, genres, out_dir / "plots/pca_logits.png", f"{title}: {len(genres)}-d logits (test clips)"
            )
        )
        counts = confusion_matrix(labels, predicted, labels=range(len(genres)))
        written += write_confusion_matrix(
            counts, genres, out_dir / "plots/confusion_matrix", f"{title}: test confusion matrix ({len(labels)} clips)"
        )
        report = classification_report(
            labels, predicted, labels=range(len(genres)), target_names=genres, output_dict=True, zero_division=0
        )
        report_path = out_dir / "report/classification_report.json"
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=2))
        written.append(report_path)
    if history:
        written.append(
            plots.learning_curves_plot(history, out_dir / "plots/learning_curves.png", f"{title}: learning curves", best_epoch)
        )
    return written


def embedding_space_name(model: GenreModel) -> str:
    """`bottleneck` for the autoencoders, `hidden` for the two-layer net: used in metric and plot names."""
    return "bottleneck" if model.has_decoder else "hidden"


def evaluate(
    trainer: pl.Trainer,
    model: GenreModel,
    datamodule: GenreDataModule,
    history: list[dict[str, float]],
    out_dir: Path,
    title: str,
    best_epoch: int | None = None,
    **settings: Any,
) -> dict[str, float]:
    """Score every split, write the reports under `out_dir`, run the registered analyses (`settings`: the
    `evaluation.*` config, analyses.py), return the final metrics."""
    outputs = {split: predict_split(trainer, model, datamodule, split) for split in SPLIT_NAMES}
    metrics = final_metrics(outputs, model.has_classifier)
    raw = {split: datamodule.split_features(split).flatten(1).numpy() for split in SPLIT_NAMES}  # maps as vectors
    genres = datamodule.class_names
    write_reports(outputs, raw["test"], model, genres, history, out_dir, title, best_epoch)
    evaluated = Evaluated(model, outputs, raw, genres, datamodule.track_ids, out_dir, title, datamodule)
    metrics.update(run_analyses(evaluated, settings))
    (out_dir / "report").mkdir(parents=True, exist_ok=True)
    (out_dir / "report/final_metrics.json").write_text(json.dumps(metrics, indent=2))
    (out_dir / "report/history.json").write_text(json.dumps(history, indent=2))  # per-epoch metrics, without MLflow
    return metrics


def embedding_quality(outputs: dict, raw: dict, model: GenreModel, knn_k: int) -> dict[str, float]:
    """Silhouette, k-NN and linear-probe accuracy on val and test, for the raw input, the embedding and the logits."""
    from genre_style.evaluation.embedding_metrics import embedding_scores

    spaces = {
        "raw": {s: raw[s] for s in SPLIT_NAMES},
        embedding_space_name(model): {s: outputs[s]["embedding"] for s in SPLIT_NAMES},
    }
    if model.has_classifier:
        spaces["logits"] = {s: outputs[s]["logits"] for s in SPLIT_NAMES}
    scores = {}
    for space, points in spaces.items():
        others = {s: (points[s], outputs[s]["y"]) for s in ("val", "test")}
        scores.update(embedding_scores(points["train"], outputs["train"]["y"], others, space, k=knn_k))
    return scores


def genre_disentanglement(model: GenreModel, outputs: dict, out_dir: Path, title: str, steps: int = 7) -> dict[str, float]:
    """MIG with respect to genre, per-dimension mutual information and active dimensions of the embedding (val and
    test), the mutual information plot, and a traversal of the most informative dimension for models with a decoder."""
    from genre_style.evaluation.disentanglement import disentanglement_scores, label_entropy, latent_genre_mi

    scores = disentanglement_scores({s: (outputs[s]["embedding"], outputs[s]["y"]) for s in ("val", "test")})
    codes, labels = outputs["test"]["embedding"], outputs["test"]["y"]
    mi = latent_genre_mi(codes, labels)
    plots.latent_mi_plot(
        mi,
        label_entropy(labels),
        out_dir / "plots/latent_genre_mi.png",
        f"{title}: mutual information of each {embedding_space_name(model)} dimension with genre (test)",
    )
    if model.has_decoder:
        dim = int(mi.argmax())
        low, high = np.quantile(codes[:, dim], [0.05, 0.95])
        values = np.linspace(low, high, steps)
        path = np.repeat(codes.mean(axis=0, keepdims=True), steps, axis=0)
        path[:, dim] = values
        model.eval()
        decoder: Any = model.decoder
        with torch.no_grad():
            decoded = decoder(torch.as_tensor(path, dtype=torch.float32, device=model.device)).cpu().numpy()
        plots.traversal_plot(
            decoded,
            values,
            dim,
            out_dir / "plots/latent_traversal.png",
            f"{title}: traversal of dimension {dim}, the most informative about genre (5-95 % of test codes)",
        )
    return scores


def song_level(outputs: dict, genres: list[str], out_dir: Path, title: str, track_ids: list[str]) -> dict[str, float]:
    """Whole-song accuracy (each song's verdict: `inference.song_probabilities`), the test split's song confusion matrix, and every
    song's verdict in `report/song_predictions.csv` (which songs a model gets wrong, and how sure it was)."""
    import csv

    from sklearn.metrics import confusion_matrix

    from genre_style.evaluation.embedding_metrics import track_level
    from genre_style.inference import song_probabilities

    scores, rows = {}, []
    for split in ("train", "val", "test"):
        logits, labels, tracks = outputs[split]["logits"], outputs[split]["y"], outputs[split]["track"]
        true, predicted = track_level(logits, labels, tracks)
        scores[key(split, TRACK_ACC)] = float((true == predicted).mean())
        for track, genre, guess in zip(np.unique(tracks), true, predicted):
            probs = song_probabilities(logits[tracks == track]).tolist()
            rows.append(
                {
                    "split": split,
                    "track_id": track_ids[track],
                    "genre": genres[genre],
                    "predicted": genres[guess],
                    "correct": bool(genre == guess),
                    "clips": int((tracks == track).sum()),
                    **{f"prob_{g}": p for g, p in zip(genres, probs)},  # in full: predict gives the same bits
                }
            )
        if split == "test":
            counts = confusion_matrix(true, predicted, labels=range(len(genres)))
            write_confusion_matrix(
                counts,
                genres,
                out_dir / "plots/confusion_matrix_tracks",
                f"{title}: test confusion matrix by song ({len(true)} songs)",
            )
    path = out_dir / "report/song_predictions.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return scores


def interpolate(model: GenreModel, test: dict, genres: list[str], out_dir: Path, title: str, steps: int) -> Path | None:
    """Walk the bottleneck from one test song's mean code to another's (two genres far apart), decode each point."""
    from sklearn.decomposition import PCA

    labels, tracks, codes = test["y"], test["track"], test["embedding"]
    present = np.unique(labels)
    if len(present) < 2:
        return None
    ends = []
    for genre in (present[0], present[-1]):
        track = tracks[labels == genre][0]
        ends.append((genres[genre], codes[tracks == track].mean(axis=0)))
    weights = np.linspace(0.0, 1.0, steps)[:, None]
    path = (1 - weights) * ends[0][1] + weights * ends[1][1]
    model.eval()
    decoder: Any = model.decoder
    with torch.no_grad():
        decoded = decoder(torch.as_tensor(path, dtype=torch.float32, device=model.device)).cpu().numpy()
    pca = PCA(n_components=2, random_state=0).fit(codes)
    return plots.interpolation_plot(
        decoded,
        pca.transform(path),
        pca.transform(codes),
        labels,
        genres,
        (ends[0][0], ends[1][0]),
        out_dir / "plots/interpolation.png",
        f"{title}: latent interpolation",
    )


# --- the registered analyses, run in this order (analyses.py) ----------------------------------------------------


@analysis("songs", metrics=(TRACK_ACC,), applies=lambda model: model.has_classifier)
def _songs(e: Evaluated) -> dict[str, float]:
    return song_level(e.outputs, e.genres, e.out_dir, e.title, e.track_ids)


@analysis("embedding_metrics", metrics=(SILHOUETTE, KNN_ACC, PROBE_ACC), settings=("knn_k",), switch="embedding_metrics")
def _embedding_metrics(e: Evaluated, knn_k: int = 10) -> dict[str, float]:
    return embedding_quality(e.outputs, e.raw, e.model, knn_k)


@analysis("disentanglement", metrics=(MIG, MAX_MI, ACTIVE_DIMS), switch="disentanglement")
def _disentanglement(e: Evaluated) -> dict[str, float]:
    return genre_disentanglement(e.model, e.outputs, e.out_dir, e.title)


@analysis("interpolation", settings=("interpolation_steps",), applies=lambda model: model.has_decoder)
def _interpolation(e: Evaluated, interpolation_steps: int = 8) -> dict[str, float]:
    """A plot only (`interpolation_steps` below 2: none)."""
    if interpolation_steps >= 2:
        interpolate(e.model, e.outputs["test"], e.genres, e.out_dir, e.title, interpolation_steps)
    return {}


# After the model's own analyses: the off-the-shelf bracket beside them (registered by importing its module).
from genre_style.evaluation import pretrained_beside  # noqa: E402, F401


def evaluate_best(
    trainer: pl.Trainer,
    model: GenreModel,
    datamodule: GenreDataModule,
    history: list[dict[str, float]],
    out_dir: Path,
    settings: dict[str, Any],
) -> dict[str, float] | None:
    """`evaluate` the tested (best) model once, its epoch marked on the learning curves. Under DDP, fit and test ran
    on every process; scoring every clip, plots and reports are rank zero's alone, on one device: the other
    processes get None and end there."""
    from genre_style.evaluation.stats import best_epoch

    checkpoint: Any = trainer.checkpoint_callback  # a ModelCheckpoint: the best model's metric and direction
    best = best_epoch(history, str(checkpoint.monitor), checkpoint.mode) if checkpoint and checkpoint.monitor else None
    if trainer.world_size > 1:
        import torch.distributed

        torch.distributed.destroy_process_group()
        if not trainer.is_global_zero:
            return None
        trainer = pl.Trainer(
            accelerator=trainer.accelerator,
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
    return evaluate(trainer, model, datamodule, history, out_dir, type(model).__name__, **settings, best_epoch=best)
