"""`python -m genre_style.downstream MODEL ROOT`: a model's frozen clip embeddings on any labelled GTZAN-layout folder.

Scores the embedding as the field does (genre_style/evaluation/probes.py): a linear probe (clips and songs),
10-NN, 1- and 5-shot prototypes over repeated song-level splits, and same-song retrieval; beside it, on the same
clips and splits, `features=stats`, the same architecture with random weights and the named pretrained brackets
(`--brackets`: frozen musicnn by default, any HEAR-API module), with paired differences.
Point it at genres the model never saw to measure a style embedding, not a classifier. MODEL is a checkpoint, an
MLflow run id or a logged model; the run that trained it gets the figures (metrics `final/downstream/<name>/...` and
the table), found from a run id or from the run folder a checkpoint is in; otherwise it says in one line that
nothing was logged.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from genre_style.errors import UserError, command

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

log = logging.getLogger("genre_style.downstream")


def _log_to_run(run_id: str, tracking_uri: str | None, name: str, result: Any, out_dir: Path) -> None:
    from genre_style.tracking.mlflow_store import default_tracking_uri, open_client

    uri = tracking_uri or default_tracking_uri()
    client = open_client(uri)
    from mlflow.entities import Metric

    # final/: as training's end logs them (evaluation.downstream), so the report reads both alike
    metrics = [Metric(k, v, 0, 0) for k, v in result.metrics(f"final/downstream/{name}").items()]
    client.log_batch(run_id, metrics=metrics)
    for suffix in (".md", ".json"):
        client.log_artifact(run_id, str(out_dir / f"{name}{suffix}"), "downstream")
    print(f"logged to run {run_id} in {uri}")


def training_run(model: str) -> tuple[str, str | None] | None:
    """(MLflow run id, its store) of the training run that wrote a checkpoint file: a run's folder records both in
    `run_info.json` (`<run>/artifacts/checkpoints/best.ckpt`, or `<run>/checkpoints/...` before the run ended)."""
    path = Path(model)
    if not path.is_file():
        return None
    for folder in path.resolve().parents[:3]:
        info = folder / "run_info.json"
        if info.is_file():
            try:
                recorded = json.loads(info.read_text())
            except (OSError, ValueError):
                return None
            run_id = recorded.get("mlflow_run_id")
            return (str(run_id), recorded.get("tracking_uri")) if run_id else None
    return None


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_style.downstream", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a checkpoint (.ckpt), an MLflow run id, or models:/<name>/<version>")
    parser.add_argument("root", help="a labelled folder in GTZAN's layout: <root>/<genre>/<audio files>")
    parser.add_argument("--genres", default="all", help="comma-separated genre folders to use (default: all)")
    parser.add_argument("--name", help="the set's name in metrics and files (default: the folder's name)")
    parser.add_argument("--splits", type=int, default=10, help="repeated song-level splits (default 10)")
    parser.add_argument("--test-share", type=float, default=0.3, help="share of each genre's songs held out (0.3)")
    parser.add_argument("--episodes", type=int, default=100, help="few-shot episodes per split (default 100)")
    parser.add_argument("--clips-per-track", type=int, default=20, help="clips from each song's start (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="splits, episodes and the random-weights bracket")
    parser.add_argument(
        "--brackets",
        default="musicnn",
        help="pretrained embeddings scored beside the model, comma-separated: musicnn[:<weights>[:<layer>]], "
        "hear:<module>[:<model file>]; none: off (default musicnn: MSD, penultimate layer; a note if not installed)",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for <name>.md/.json (default outputs/downstream)")
    parser.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    parser.add_argument("--no-log", action="store_true", help="do not log the figures to the model's MLflow run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.splits < 1 or args.episodes < 1 or not 0 < args.test_share < 1:
        raise UserError("--splits and --episodes must be >= 1 and --test-share in (0, 1)", "e.g. --splits 10 --test-share 0.3")
    from genre_style.evaluation.pretrained_brackets import parse_all

    parse_all(args.brackets)  # a bad bracket name: one line, before the model or any audio is read
    from genre_style.loading import load_model, run_id_of

    outputs = Path(os.environ.get("GENRE_STYLE_OUTPUTS") or "outputs")
    out_dir = args.out or outputs / "downstream"
    embedder = load_model(args.model, args.tracking_uri)
    genres = "all" if args.genres == "all" else [g.strip() for g in args.genres.split(",") if g.strip()]
    from genre_style.evaluation.brackets import evaluate_folder

    name, result = evaluate_folder(
        embedder,
        args.root,
        genres,
        args.name,
        out_dir,
        args.splits,
        args.test_share,
        args.episodes,
        args.clips_per_track,
        outputs / "cache",
        args.seed,
        args.brackets,
    )
    print(result.markdown())
    print(f"-> {out_dir / (name + '.md')}, {out_dir / (name + '.json')}")
    run_id, uri = run_id_of(args.model), args.tracking_uri
    if run_id is None and (found := training_run(args.model)) is not None:
        run_id, uri = found[0], args.tracking_uri or found[1]  # the store the run was logged to, unless told otherwise
    if args.no_log:
        print("not logged to MLflow (--no-log)")
    elif run_id:
        _log_to_run(run_id, uri, name, result, out_dir)
    else:
        print(
            f"not logged to MLflow: {args.model} is not in a training run's folder (its run_info.json names the run); "
            "pass the run id as MODEL to log there"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
