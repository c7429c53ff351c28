"""`python -m genre_style.predict MODEL AUDIO...`: the genre of each audio file, from a checkpoint or an MLflow model.

MODEL as for `genre_style.embed`: a `best.ckpt`, an MLflow run id, `models:/<name>/<version>` or `runs:/<run id>/model`.
Prints one line per file: the song's verdict and its probability (`inference.song_probabilities` of its clips).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from genre_style.embed import audio_files, embed_files
from genre_style.errors import UserError, command
from genre_style.loading import load_model


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_style.predict", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a checkpoint, an MLflow run id, models:/<name>/<version> or runs:/<run id>/model")
    parser.add_argument("inputs", nargs="+", help="audio files or folders")
    parser.add_argument("--tracking-uri", help="the MLflow store (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    args = parser.parse_args(argv)
    files = audio_files(args.inputs)
    embedder = load_model(args.model, args.tracking_uri)
    if not embedder.has_classifier:
        raise UserError(
            f"{args.model} has no classifier (an autoencoder): it embeds but does not predict genres",
            "use python -m genre_style.embed for its embeddings",
        )
    _, tracks, skipped = embed_files(embedder, files)
    for _, row in tracks.iterrows():
        print(f"{row['path']}\t{row['predicted_genre']}\t{row[f'prob_{row.predicted_genre}']:.3f}")
    for item in skipped:
        print(f"{item['path']}\tskipped: {item['reason']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
