"""Time to embed one 3-s patch with the PyTorch musicnn, on one thread, beside musicnn's own TensorFlow graph.

    python -m benchmarks.bench_musicnn [--weights MSD_musicnn] [--repeats 50] [--tf-python /tmp/tfref/bin/python]

The PyTorch port (models/pretrained/musicnn.py) embeds a 187-frame patch up to its embedding layer (`penultimate`,
or `pool5` for the VGGs) in eval mode, no gradient; the TensorFlow graph (benchmarks/musicnn_tf.py, in a throwaway venv
with TensorFlow: how to make it is there) does the same, run in a subprocess when `--tf-python` exists. Both on one
CPU thread; the median of `--repeats` runs after three warm-up runs. The front-end (the log-mel) is left out of both.
Figures: docs/pretrained.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np

from benchmarks.common import REPO


def torch_seconds(weights: str, repeats: int) -> float:
    """The median seconds of one patch through the PyTorch port, on one thread."""
    import torch

    from genre_style.models.pretrained.musicnn import WEIGHTS, MusicnnEncoder
    from genre_style.speedups import to_preferred_layout

    torch.set_num_threads(1)
    layer = "pool5" if WEIGHTS[weights].kind == "vgg" else "penultimate"
    encoder = MusicnnEncoder((96, 187), 64, weights=weights, layer=layer, cache_dir=str(REPO / "outputs" / "cache")).eval()
    to_preferred_layout(encoder, "cpu")  # as training and load_model lay it out (musicnn declines channels-last)
    patch = torch.from_numpy(np.random.default_rng(0).uniform(0, 2, (1, 187, 96)).astype(np.float32))
    times = []
    with torch.inference_mode():
        for i in range(repeats + 3):
            start = time.perf_counter()
            encoder.backbone(patch)
            if i >= 3:
                times.append(time.perf_counter() - start)
    return float(np.median(times))


def tf_seconds(tf_python: str, weights: str, repeats: int) -> dict | None:
    """musicnn's TF graph on one thread (benchmarks/musicnn_tf.py bench), or None without that venv."""
    if not Path(tf_python).exists():
        return None
    script = REPO / "benchmarks" / "musicnn_tf.py"
    result = subprocess.run(
        [tf_python, str(script), "bench", "--model", weights, "--repeats", str(repeats)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="MSD_musicnn")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--tf-python", default="/tmp/tfref/bin/python", help="a Python with tensorflow, tf-keras, musicnn")
    args = parser.parse_args()
    import torch

    ours = torch_seconds(args.weights, args.repeats)
    print(f"{args.weights}: PyTorch {torch.__version__} port, 1 thread: {ours * 1000:.1f} ms per 3-s patch")
    tf = tf_seconds(args.tf_python, args.weights, args.repeats)
    if tf is None:
        print(f"TensorFlow graph: skipped (no {args.tf_python}; benchmarks/musicnn_tf.py says how to make it)")
        return
    theirs = tf["median_s"]
    print(f"{args.weights}: TensorFlow {tf['tensorflow']} graph, 1 thread: {theirs * 1000:.1f} ms per 3-s patch")
    print(f"PyTorch / TensorFlow time: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
