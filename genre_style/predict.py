"""`python -m genre_style.predict MODEL AUDIO...`: the genres of each audio file, from a checkpoint or an MLflow model.

MODEL as for `genre_style.embed`: a `best.ckpt`, an MLflow run id, `models:/<name>/<version>`, `runs:/<run id>/model`
or an exported `.onnx` file. Writes to stdout, per file, its `--top-k` most probable genres and their probabilities
(the song's verdict, `inference.song_probabilities` of its clips), as CSV with a header (`path,genre_1,prob_1,...`) or
JSON (`--format json`: a list of {"path", "genres": [{"genre", "probability"}, ...]}). A file that cannot be read is
said on stderr and skipped; when none could be, the exit code is 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
from typing import Sequence

from genre_style.errors import UserError, command

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_style.predict", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a checkpoint, an MLflow run id, models:/<name>/<version>, runs:/<run id>/model or .onnx")
    parser.add_argument("inputs", nargs="+", help="audio files, folders, or quoted glob patterns")
    parser.add_argument("--top-k", type=int, default=3, help="how many genres per file, most probable first (default: 3)")
    parser.add_argument("--format", choices=("csv", "json"), default="csv", help="csv (with a header) or json (default: csv)")
    parser.add_argument("--device", default="auto", help="auto (a GPU where there is one), cpu, cuda, cuda:<n>, mps")
    parser.add_argument("--backend", choices=("torch", "onnx"), help="torch, or onnx for an exported model (default: from MODEL)")
    parser.add_argument("--tracking-uri", help="the MLflow store (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="genre-style: %(message)s")
    if args.top_k < 1:
        raise UserError(f"--top-k {args.top_k} must be at least 1", "e.g. --top-k 3")
    from genre_style.batch import each_file, load_runner, nothing_read, resolve_inputs, skipped_summary
    from genre_style.inference import song_probabilities

    files = resolve_inputs(args.inputs)
    runner = load_runner(args.model, args.backend, args.device, args.tracking_uri)
    if not runner.has_classifier:
        raise UserError(
            f"{args.model} has no classifier (an autoencoder): it embeds but does not predict genres",
            "use python -m genre_style.embed for its embeddings",
        )
    k = min(args.top_k, len(runner.genres))
    skipped: list[dict] = []
    rows = []
    writer = csv.writer(sys.stdout, lineterminator="\n")
    header = ["path", *(f"{what}_{i}" for i in range(1, k + 1) for what in ("genre", "prob"))]
    for item, out in each_file(runner, files, skipped, layer="logits"):
        probs = song_probabilities(out.values)
        top = sorted(range(len(probs)), key=lambda g: -probs[g])[:k]
        if args.format == "csv":
            if header:  # written with the first row: when no file can be read, stdout stays empty
                writer.writerow(header)
                header = []
            writer.writerow([str(item.path), *(v for g in top for v in (runner.genres[g], f"{probs[g]:.4f}"))])
            sys.stdout.flush()  # a line per file as it is done: a pipe sees progress
        else:
            genres = [{"genre": runner.genres[g], "probability": round(float(probs[g]), 6)} for g in top]
            rows.append({"path": str(item.path), "genres": genres})
    if len(skipped) == len(files):
        raise nothing_read(len(files))
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=1)
        print()
    if skipped:
        print(f"genre-style: {skipped_summary(skipped, len(files))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
