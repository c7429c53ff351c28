"""`python -m genre_style.predict MODEL AUDIO...`: the genre of each audio file, from a checkpoint or an MLflow model.

MODEL as for `genre_style.embed`: a `best.ckpt`, an MLflow run id, `models:/<name>/<version>` or `runs:/<run id>/model`.
Prints one line per file: the predicted genre and its probability (the mean over the file's clips).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from genre_style.embed import audio_files, embed_files, load_embedder
from genre_style.errors import UserError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_style.predict", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a checkpoint, an MLflow run id, models:/<name>/<version> or runs:/<run id>/model")
    parser.add_argument("inputs", nargs="+", help="audio files or folders")
    parser.add_argument("--tracking-uri", help="the MLflow store (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    args = parser.parse_args(argv)
    try:
        files = audio_files(args.inputs)
        with tempfile.TemporaryDirectory() as tmp:
            embedder = load_embedder(args.model, args.tracking_uri, Path(tmp))
        if not embedder.model.has_classifier:
            raise UserError(
                f"{args.model} has no classifier (an autoencoder): it embeds but does not predict genres",
                "use python -m genre_style.embed for its embeddings",
            )
        _, tracks, skipped = embed_files(embedder, files)
    except UserError as exc:
        print(f"genre-style: error: {exc}", file=sys.stderr)
        return 2
    for _, row in tracks.iterrows():
        print(f"{row['path']}\t{row['predicted_genre']}\t{row[f'prob_{row.predicted_genre}']:.3f}")
    for item in skipped:
        print(f"{item['path']}\tskipped: {item['reason']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
