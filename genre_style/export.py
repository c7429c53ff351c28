"""`python -m genre_style.export MODEL --onnx out.onnx`: a trained model as an ONNX file, checked against PyTorch.

MODEL as for `genre_style.embed` (a `best.ckpt`, an MLflow run id, `models:/<name>/<version>`, `runs:/<run id>/model`).
The graph takes the front-end's features of a batch of clips, `float32 [batch, *feature_shape]` (not standardised:
the training split's standardisation is inside), and gives `embedding [batch, D]` and, with a classifier,
`logits [batch, genres]`; genre_style/onnx_backend.py says more. The front-end stays in numpy/librosa:
`python -m genre_style.embed out.onnx AUDIO... --backend onnx` runs both. After writing, the file is run through
onnxruntime on random features and compared with PyTorch: the largest absolute difference is printed, and a
difference above `--tolerance` is an error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from genre_style.errors import UserError, command

if TYPE_CHECKING:
    from genre_style.inference import Embedder

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def parity(embedder: Embedder, onnx_path: str | Path, n: int = 16, seed: int = 0) -> dict[str, float]:
    """The largest absolute difference between onnxruntime and PyTorch per output, on `n` clips of random
    features at the training data's scale (standard normal after standardisation), each side standardising its way
    (numpy then PyTorch, as `embed` runs it; inside the graph for ONNX)."""
    import numpy as np

    from genre_style.data.preprocessing import standardize
    from genre_style.onnx_backend import OnnxRunner

    pre = embedder.preprocessing
    rng = np.random.default_rng(seed)
    standardized = rng.standard_normal((n, *pre.spec.feature_shape)).astype(np.float32)
    raw = standardized if pre.mean is None or pre.std is None else standardized * pre.std + pre.mean
    embedding, logits = embedder.outputs(standardize(raw.copy(), pre.mean, pre.std))
    runner = OnnxRunner(onnx_path, "cpu")
    got = runner.run(raw.astype(np.float32), runner.layer_names)
    diffs = {"embedding": float(np.abs(got["embedding"] - embedding).max())}
    if logits is not None:
        diffs["logits"] = float(np.abs(got["logits"] - logits).max())
    return diffs


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_style.export", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a checkpoint, an MLflow run id, models:/<name>/<version> or runs:/<run id>/model")
    parser.add_argument("--onnx", type=Path, required=True, help="the ONNX file to write, e.g. model.onnx")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest difference from PyTorch allowed (default: 1e-4)")
    parser.add_argument("--tracking-uri", help="the MLflow store (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    args = parser.parse_args(argv)
    from genre_style.loading import load_model
    from genre_style.onnx_backend import export_onnx

    embedder = load_model(args.model, args.tracking_uri)
    path = export_onnx(embedder, args.onnx, args.opset)
    diffs = parity(embedder, path)
    from genre_style.onnx_backend import OnnxRunner

    batch = "1" if OnnxRunner(path, "cpu").one_clip_a_call else "batch"  # 1: the model loops over its batch in Python
    shape = ", ".join([batch, *map(str, embedder.spec.feature_shape)])
    worst = max(diffs.values())
    print(
        f"wrote {path}: features float32 [{shape}] ({embedder.spec.features}, not standardised) -> "
        + ", ".join(diffs)
        + f"; onnxruntime vs PyTorch max abs difference {worst:.2e}"
    )
    if worst > args.tolerance:
        raise UserError(f"the ONNX model differs from PyTorch by {worst:.2e} (> {args.tolerance})", "report it, with the model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
