"""`python -m genre_style.embed MODEL INPUT...`: embeddings and genre probabilities for your own audio.

MODEL is a checkpoint (`best.ckpt` of a run), an MLflow run id, or an MLflow model URI (`models:/<name>/<version>`,
`runs:/<run id>/model`); INPUT are audio files or folders
(anything librosa decodes: wav, flac, mp3, ogg, au). Each file is decoded to the model's sample rate
(resampled, stereo mixed down), cut into the clips the model was trained on, turned into features with
the preprocessing saved in the checkpoint (front-end and standardisation), and embedded. Writes one row
per clip and, beside it, one row per file (the mean embedding and mean probabilities of its clips).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from genre_style.data.audio import ClipSpec, clip_features, load_mono, segment
from genre_style.data.gtzan import AUDIO_EXTENSIONS
from genre_style.errors import AudioError, UserError

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

log = logging.getLogger("genre_style.embed")


class Embedder:
    """A trained model plus the preprocessing it was trained with."""

    def __init__(self, checkpoint: str | Path) -> None:
        import torch

        try:
            state = torch.load(str(checkpoint), map_location="cpu", weights_only=False)
        except (OSError, RuntimeError, EOFError) as exc:
            raise UserError(
                f"cannot read checkpoint {checkpoint} ({exc})", "pass a best.ckpt from a run, or an MLflow run id"
            ) from None
        meta = state.get("genre_style")
        data_state = state.get("GenreDataModule")
        if not meta or not data_state:
            raise UserError(
                f"{checkpoint} was not written by genre-style training", "pass a best.ckpt from a run, or an MLflow run id"
            )
        module_name, class_name = meta["model_class"].rsplit(".", 1)
        model_class = getattr(importlib.import_module(module_name), class_name)
        self.model = model_class(**state["hyper_parameters"])
        self.model.load_state_dict(state["state_dict"])
        self.model.eval()
        self.genres = list(meta["class_names"])
        known = {f.name for f in fields(ClipSpec)}
        self.spec = ClipSpec(**{k: v for k, v in data_state["spec"].items() if k in known})
        mean, std = data_state.get("standardize_mean"), data_state.get("standardize_std")
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.std = None if std is None else np.asarray(std, dtype=np.float32)

    def features(self, path: Path, max_clips: int | None) -> tuple[np.ndarray, int]:
        """Clip features of one file; a file shorter than one clip is zero-padded to one (with a warning)."""
        return self.signal_features(load_mono(path, self.spec.sample_rate), max_clips, str(path))

    def signal_features(
        self, signal: np.ndarray, max_clips: int | None = None, name: str = "the audio", sample_rate: int | None = None
    ) -> tuple[np.ndarray, int]:
        """Clip features of a mono waveform (resampled from `sample_rate` to the model's where they differ)."""
        signal = np.asarray(signal, dtype=np.float32)
        if sample_rate and sample_rate != self.spec.sample_rate:
            import librosa

            signal = librosa.resample(signal, orig_sr=sample_rate, target_sr=self.spec.sample_rate)
        if len(signal) < self.spec.segment_samples:
            log.warning("%s is shorter than one clip (%.2f s): padded with silence", name, len(signal) / self.spec.sample_rate)
            signal = np.pad(signal, (0, self.spec.segment_samples - len(signal)))
        clips = segment(signal, self.spec.segment_samples, self.spec.hop_samples, max_clips or sys.maxsize)
        x = clip_features(clips, self.spec).reshape(len(clips), *self.spec.feature_shape)
        if self.mean is not None and self.std is not None:
            x = (x - self.mean) / self.std
        return x.astype(np.float32), len(clips)

    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        with torch.no_grad():
            out = self.model(torch.as_tensor(x))
        probs = None if out.logits is None else torch.softmax(out.logits, dim=1).numpy()
        return out.embedding.numpy(), probs


def audio_files(inputs: Sequence[str | Path]) -> list[Path]:
    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        elif item.exists():
            files.append(item)
        else:
            raise UserError(f"input {item} does not exist", "pass audio files or folders that hold them")
    if not files:
        raise UserError(
            f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {[str(i) for i in inputs]}", "pass audio files or folders"
        )
    return files


def load_embedder(model: str, tracking_uri: str | None, workdir: Path) -> Embedder:
    """An Embedder from a checkpoint, an MLflow run id, or a logged model (`models:/<name>/<version>`, `runs:/<id>/model`)."""
    if model.startswith(("models:/", "runs:/")):
        from genre_style.tracking.pyfunc_model import load_embedder as from_mlflow

        return from_mlflow(model, tracking_uri)
    return Embedder(resolve_checkpoint(model, tracking_uri, workdir))


def resolve_checkpoint(model: str, tracking_uri: str | None, workdir: Path) -> Path:
    """A checkpoint path as given, or the `checkpoints/best.ckpt` artifact of an MLflow run id."""
    if Path(model).exists():
        return Path(model)
    if len(model) == 32 and all(c in "0123456789abcdef" for c in model.lower()):
        from genre_style.tracking.store import default_tracking_uri, open_client

        uri = tracking_uri or default_tracking_uri()
        try:
            return Path(open_client(uri).download_artifacts(model, "checkpoints/best.ckpt", str(workdir)))
        except Exception as exc:
            raise UserError(
                f"cannot fetch checkpoints/best.ckpt of run {model} from {uri} ({str(exc).splitlines()[0]})",
                "check the run id and --tracking-uri (or MLFLOW_TRACKING_URI)",
            ) from None
    raise UserError(
        f"{model} is neither a checkpoint file nor an MLflow run id", "pass a best.ckpt path or a 32-character run id"
    )


def embed_files(embedder: Embedder, files: Sequence[Path], max_clips: int | None = None) -> tuple[Any, Any, list[dict]]:
    """(clip table, track table, skipped files) as pandas DataFrames."""
    import pandas as pd

    clip_rows, track_rows, skipped = [], [], []
    seconds_per_hop = embedder.spec.hop_samples / embedder.spec.sample_rate
    for path in files:
        try:
            x, n = embedder.features(path, max_clips)
        except AudioError as exc:
            log.warning("skipping %s: %s", path, exc)
            skipped.append({"path": str(path), "reason": str(exc)})
            continue
        emb, probs = embedder.embed(x)
        base = {"path": str(path)}
        for i in range(n):
            row = {**base, "clip": i, "start_s": round(i * seconds_per_hop, 3)}
            if probs is not None:
                row["predicted_genre"] = embedder.genres[int(probs[i].argmax())]
                row.update({f"prob_{g}": float(p) for g, p in zip(embedder.genres, probs[i])})
            row.update({f"emb_{j:03d}": float(v) for j, v in enumerate(emb[i])})
            clip_rows.append(row)
        track = {**base, "clips": n}
        if probs is not None:
            mean_probs = probs.mean(axis=0)
            track["predicted_genre"] = embedder.genres[int(mean_probs.argmax())]
            track.update({f"prob_{g}": float(p) for g, p in zip(embedder.genres, mean_probs)})
        track.update({f"emb_{j:03d}": float(v) for j, v in enumerate(emb.mean(axis=0))})
        track_rows.append(track)
    return pd.DataFrame(clip_rows), pd.DataFrame(track_rows), skipped


def write_table(frame: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_style.embed", description=__doc__.splitlines()[0])
    parser.add_argument(
        "model", help="a checkpoint (.ckpt), an MLflow run id, or a logged model: models:/<name>/<version>, runs:/<run id>/model"
    )
    parser.add_argument("inputs", nargs="+", help="audio files or folders")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("embeddings.parquet"),
        help="clip-level table (.parquet or .csv); the per-file table goes beside it as *_tracks.*",
    )
    parser.add_argument(
        "--tracking-uri",
        help="MLflow store to fetch a run's checkpoint from (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)",
    )
    parser.add_argument("--max-clips", type=int, default=None, help="at most this many clips per file (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        files = audio_files(args.inputs)
        with tempfile.TemporaryDirectory() as tmp:
            embedder = load_embedder(args.model, args.tracking_uri, Path(tmp))
        clips, tracks, skipped = embed_files(embedder, files, args.max_clips)
        if clips.empty:
            raise UserError(
                f"none of the {len(files)} file(s) could be decoded (first: {skipped[0]['reason']})", "check the files"
            )
    except UserError as exc:
        print(f"genre-style: error: {exc}", file=sys.stderr)
        return 2
    clip_path = write_table(clips, args.out)
    track_path = write_table(tracks, args.out.with_name(f"{args.out.stem}_tracks{args.out.suffix}"))
    print(
        f"{len(clips)} clips from {len(tracks)} file(s) -> {clip_path}, {track_path}"
        + (f"; skipped {len(skipped)}: " + ", ".join(s["path"] for s in skipped) if skipped else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
