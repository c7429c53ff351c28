"""`python -m genre_style.embed MODEL INPUT...`: embeddings and genre probabilities for your own audio.

MODEL is a checkpoint (`best.ckpt` of a run), an MLflow run id, or an MLflow model URI (`models:/<name>/<version>`,
`runs:/<run id>/model`); INPUT are audio files or folders
(anything librosa decodes: wav, flac, mp3, ogg, au). Each file is decoded to the model's sample rate
(resampled, stereo mixed down), cut into the clips the model was trained on, turned into features with
the preprocessing saved in the checkpoint (front-end and standardisation), and embedded (genre_style/inference.py).
Writes one row per clip and, beside it, one row per file (its verdict and the mean embedding of its clips).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from genre_style.data.gtzan import AUDIO_EXTENSIONS
from genre_style.errors import AudioError, UserError, command
from genre_style.inference import Embedder
from genre_style.loading import load_model

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

log = logging.getLogger("genre_style.embed")


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


def embed_files(embedder: Embedder, files: Sequence[Path], max_clips: int | None = None) -> tuple[Any, Any, list[dict]]:
    """(clip table, track table, skipped files) as pandas DataFrames: a row per clip (start, genre probabilities,
    embedding) and a row per file (its verdict, `inference.song_probabilities`, and mean embedding)."""
    import pandas as pd

    clip_rows, track_rows, skipped = [], [], []
    for path in files:
        try:
            song = embedder.embed_file(path, max_clips)
        except AudioError as exc:
            log.warning("skipping %s: %s", path, exc)
            skipped.append({"path": str(path), "reason": str(exc)})
            continue
        base, clip_probs = {"path": str(path)}, song.clip_probabilities
        for i, start in enumerate(song.start_s):
            row = {**base, "clip": i, "start_s": round(float(start), 3)}
            if clip_probs is not None:
                row["predicted_genre"] = embedder.genres[int(clip_probs[i].argmax())]
                row.update({f"prob_{g}": float(p) for g, p in zip(embedder.genres, clip_probs[i])})
            row.update({f"emb_{j:03d}": float(v) for j, v in enumerate(song.embeddings[i])})
            clip_rows.append(row)
        track = {**base, "clips": len(song.start_s)}
        if song.probabilities is not None:
            track["predicted_genre"] = song.genre
            track.update({f"prob_{g}": float(p) for g, p in zip(embedder.genres, song.probabilities)})
        track.update({f"emb_{j:03d}": float(v) for j, v in enumerate(song.embedding)})
        track_rows.append(track)
    return pd.DataFrame(clip_rows), pd.DataFrame(track_rows), skipped


def write_table(frame: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@command
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
    files = audio_files(args.inputs)
    embedder = load_model(args.model, args.tracking_uri)
    clips, tracks, skipped = embed_files(embedder, files, args.max_clips)
    if clips.empty:
        raise UserError(f"none of the {len(files)} file(s) could be decoded (first: {skipped[0]['reason']})", "check the files")
    clip_path = write_table(clips, args.out)
    track_path = write_table(tracks, args.out.with_name(f"{args.out.stem}_tracks{args.out.suffix}"))
    print(
        f"{len(clips)} clips from {len(tracks)} file(s) -> {clip_path}, {track_path}"
        + (f"; skipped {len(skipped)}: " + ", ".join(s["path"] for s in skipped) if skipped else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
