"""`python -m genre_style.embed MODEL INPUT...`: embeddings (and genre probabilities) for your own audio.

MODEL is a checkpoint (`best.ckpt` of a run), an MLflow run id, an MLflow model URI (`models:/<name>/<version>`,
`runs:/<run id>/model`), or an ONNX file from `python -m genre_style.export` (`--backend onnx`). INPUT are audio files,
folders or quoted glob patterns (anything libsndfile or librosa decodes: wav, flac, mp3, ogg, au). Each file is
streamed (memory stays flat on long files) at the model's sample rate (resampled, stereo mixed down), cut into
windows of the model's clip length `--hop` seconds apart (default: the model's own non-overlapping clips), turned into
features with the preprocessing saved with the model, and run through it in batches of `--batch-size` windows.

Output, either
- `--out-dir DIR`: per input `DIR/<name>.npy` (the layer's values, `[windows, D]` float32) and
  `DIR/<name>_timestamps.npy` (each window's start in seconds, `[windows]` float64); `<name>` is the file's path
  below the folder given (without its suffix), or its stem for a file or glob given;
- `--out FILE` (default `embeddings.parquet`; `.csv` for CSV): a row per window (start, genre probabilities, `emb_*`
  values) and, beside it as `*_tracks.*`, a row per file (its verdict and the mean of its windows' values).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from genre_style.errors import UserError, command

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

log = logging.getLogger("genre_style.embed")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m genre_style.embed",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "model",
        help="a checkpoint (.ckpt), an MLflow run id, a logged model (models:/<name>/<version>, runs:/<run id>/model), "
        "or an exported .onnx file",
    )
    p.add_argument("inputs", nargs="+", help="audio files, folders, or quoted glob patterns ('music/**/*.mp3')")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--out-dir", type=Path, help="one <name>.npy and one <name>_timestamps.npy per input, in this folder")
    out.add_argument("--out", type=Path, help="one table (.parquet or .csv) (default: embeddings.parquet)")
    p.add_argument("--hop", type=float, help="seconds between windows, e.g. 0.5 (default: the model's clip hop)")
    p.add_argument(
        "--layer",
        default="embedding",
        help="embedding (the bottleneck, the default), logits, or an encoder module: encoder.<name>",
    )
    p.add_argument("--batch-size", type=int, default=64, help="windows per forward pass (default: 64)")
    p.add_argument("--device", default="auto", help="auto (a GPU where there is one; the default), cpu, cuda, cuda:<n>, mps")
    p.add_argument(
        "--backend", choices=("torch", "onnx"), help="torch, or onnx (onnxruntime) for a .onnx MODEL (default: from MODEL)"
    )
    p.add_argument(
        "--tracking-uri",
        help="MLflow store to fetch a run's checkpoint from (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)",
    )
    p.add_argument("--max-clips", type=int, default=None, help="at most this many windows per file (default: all)")
    return p


def output_names(files: Sequence, out_dir: Path) -> None:
    """Refuse two inputs that would write the same `--out-dir` files."""
    seen: dict[Path, Path] = {}
    for item in files:
        if item.name in seen:
            raise UserError(
                f"{seen[item.name]} and {item.path} would both write {out_dir / item.name}.npy",
                "pass their folder instead (names keep the path below it), or embed them into different --out-dir",
            )
        seen[item.name] = item.path


@command
def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.batch_size < 1:
        raise UserError(f"--batch-size {args.batch_size} must be at least 1", "e.g. --batch-size 64")
    import numpy as np

    from genre_style.batch import (
        check_layer,
        each_file,
        hop_samples,
        load_runner,
        nothing_read,
        resolve_inputs,
        skipped_summary,
        tables,
        write_table,
    )

    files = resolve_inputs(args.inputs)
    if args.out_dir is not None:
        output_names(files, args.out_dir)
    runner = load_runner(args.model, args.backend, args.device, args.tracking_uri)
    check_layer(runner, args.layer)
    hop_samples(runner.preprocessing, args.hop)  # a bad --hop is said before any file is read
    options = {"layer": args.layer, "hop_s": args.hop, "batch_size": args.batch_size, "max_clips": args.max_clips}
    began = time.perf_counter()
    skipped: list[dict] = []
    if args.out_dir is not None:
        written = windows = 0
        for item, out in each_file(runner, files, skipped, with_logits=False, **options):
            target = args.out_dir / item.name
            target.parent.mkdir(parents=True, exist_ok=True)
            np.save(target.with_name(f"{target.name}.npy"), out.values.astype(np.float32, copy=False))
            np.save(target.with_name(f"{target.name}_timestamps.npy"), out.start_s)
            written, windows = written + 1, windows + len(out.start_s)
        where = f"{args.out_dir}/ (<name>.npy, <name>_timestamps.npy)"
    else:
        clips, tracks, skipped = tables(runner, files, **options)
        written, windows = len(tracks), len(clips)
        if written:
            table = args.out or Path("embeddings.parquet")
            clip_path = write_table(clips, table)
            track_path = write_table(tracks, table.with_name(f"{table.stem}_tracks{table.suffix}"))
            where = f"{clip_path}, {track_path}"
    if not written:
        raise nothing_read(len(files))
    seconds = time.perf_counter() - began
    print(f"{windows} windows ({args.layer}) from {written} file(s) in {seconds:.1f} s -> {where}")
    if skipped:
        print(f"genre-style: {skipped_summary(skipped, len(files))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
