"""After training: score the best model on every split, write plots and reports, log them to MLflow.

Everything is written to the run folder first and uploaded from there, so a tracking failure never
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
from genre_style.models.base import GenreModel
from genre_style.tracking import plots

log = logging.getLogger(__name__)


def predict_split(trainer: pl.Trainer, model: GenreModel, datamodule: GenreDataModule, split: str) -> dict[str, np.ndarray]:
    """Model outputs for every clip of a split, in eval mode (dropout off), as numpy arrays."""
    batches = trainer.predict(model, dataloaders=datamodule.eval_dataloader(split))
    return {key: torch.cat([b[key] for b in batches]).cpu().numpy() for key in batches[0]}


def final_metrics(outputs: dict[str, dict[str, np.ndarray]], has_classifier: bool) -> dict[str, float]:
    """The paper's Table 1 figures for the model as saved: accuracy (or reconstruction) per split."""
    metrics = {}
    for split, out in outputs.items():
        if has_classifier:
            metrics[f"{split}/acc"] = float((out["logits"].argmax(axis=1) == out["y"]).mean())
        if "reconstruction_error" in out:
            metrics[f"{split}/recon"] = float(out["reconstruction_error"].mean())
    return metrics


def write_reports(
    outputs: dict[str, dict[str, np.ndarray]],
    raw_test: np.ndarray,
    model: GenreModel,
    genres: list[str],
    history: list[dict[str, float]],
    out_dir: Path,
    title: str,
) -> list[Path]:
    """Confusion matrix (PNG + CSV), classification report, PCA plots and learning curves under `out_dir`."""
    from sklearn.metrics import classification_report, confusion_matrix

    test = outputs["test"]
    labels = test["y"]
    written = [plots.pca_plot(raw_test, labels, genres, out_dir / "plots/pca_raw.png", f"{title}: raw input (test clips)")]
    space = "bottleneck" if model.has_decoder else "hidden"
    dim = test["embedding"].shape[1]
    written.append(plots.pca_plot(test["embedding"], labels, genres, out_dir / f"plots/pca_{space}.png",
                                  f"{title}: {dim}-d {space} (test clips)"))
    if model.has_classifier:
        predicted = test["logits"].argmax(axis=1)
        written.append(plots.pca_plot(test["logits"], labels, genres, out_dir / "plots/pca_logits.png",
                                      f"{title}: {len(genres)}-d logits (test clips)"))
        counts = confusion_matrix(labels, predicted, labels=range(len(genres)))
        written.append(plots.confusion_matrix_plot(counts, genres, out_dir / "plots/confusion_matrix.png",
                                                   f"{title}: test confusion matrix ({len(labels)} clips)"))
        csv_path = out_dir / "plots/confusion_matrix.csv"
        rows = ["true\\predicted," + ",".join(genres)] + [f"{g}," + ",".join(map(str, row)) for g, row in zip(genres, counts)]
        csv_path.write_text("\n".join(rows) + "\n")
        report = classification_report(labels, predicted, labels=range(len(genres)), target_names=genres,
                                       output_dict=True, zero_division=0)
        report_path = out_dir / "report/classification_report.json"
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=2))
        written += [csv_path, report_path]
    if history:
        written.append(plots.learning_curves_plot(history, out_dir / "plots/learning_curves.png", f"{title}: learning curves"))
    return written


def evaluate(
    trainer: pl.Trainer,
    model: GenreModel,
    datamodule: GenreDataModule,
    history: list[dict[str, float]],
    out_dir: Path,
    title: str,
) -> dict[str, float]:
    """Score every split, write the reports under `out_dir`, return the final metrics."""
    outputs = {split: predict_split(trainer, model, datamodule, split) for split in SPLIT_NAMES}
    metrics = final_metrics(outputs, model.has_classifier)
    raw_test = datamodule.tensors["test"][0].numpy()
    write_reports(outputs, raw_test, model, datamodule.class_names, history, out_dir, title)
    (out_dir / "report").mkdir(parents=True, exist_ok=True)
    (out_dir / "report/final_metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def log_to_mlflow(logger: Any, metrics: dict[str, float], out_dir: Path, step: int) -> None:
    """Upload final metrics and the whole artifact folder to the logger's run."""
    if logger is None:
        return
    logger.log_metrics(metrics, step=step)
    logger.experiment.log_artifacts(logger.run_id, str(out_dir))
