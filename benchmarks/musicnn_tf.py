"""musicnn's own TensorFlow graph, for the reference numbers and the speed comparison of the PyTorch port.

Runs only in a throwaway virtual environment with TensorFlow (never in this project's, nor in CI)::

    python3 -m venv /tmp/tfref
    /tmp/tfref/bin/pip install tensorflow-cpu tf-keras && /tmp/tfref/bin/pip install --no-deps musicnn==0.1.0
    /tmp/tfref/bin/python benchmarks/musicnn_tf.py reference patches.npz out.npz   # tests/fixtures/musicnn_reference.py
    /tmp/tfref/bin/python benchmarks/musicnn_tf.py bench --repeats 50             # benchmarks/bench_musicnn.py

Imports nothing of genre_style (that venv has no torch): the graph is musicnn's `models.define_model`, restored from the
package's checkpoint as its `extractor.py` does, fed log-mel patches `[n, 187, 96]` (frames, bands) computed elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.compat.v1.layers need Keras 2 (tf-keras) under TF >= 2.16
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

N_FRAMES, N_MELS = 187, 96


def _graph(model: str, threads: int | None = None):
    """(session, placeholder, {layer: tensor}) of musicnn's graph for `model`, its weights restored."""
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, N_MELS])
        outputs = models.define_model(x, False, model, 50)  # is_training=False: batch norm's moving statistics
    names = (
        ("logits", "pool1", "pool2", "pool3", "pool4", "pool5")
        if "vgg" in model
        else ("logits", "timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool", "penultimate")
    )
    layers = dict(zip(names, outputs))
    layers["taggram"] = tf.nn.sigmoid(layers["logits"])
    config = tf.compat.v1.ConfigProto()
    if threads:
        config.intra_op_parallelism_threads = config.inter_op_parallelism_threads = threads
    session = tf.compat.v1.Session(config=config)
    session.run(tf.compat.v1.global_variables_initializer())
    folder = os.path.join(os.path.dirname(models.__file__), model)
    tf.compat.v1.train.Saver().restore(session, folder + "/")
    return session, x, layers


def reference(patches_path: str, out_path: str, wanted: dict[str, list[str]]) -> None:
    """Each model's chosen layers for the patches in `patches_path` (key `patches`), saved as `<model>/<layer>`."""
    patches = np.load(patches_path)["patches"].astype(np.float32)
    results = {}
    for model, layers in wanted.items():
        session, x, tensors = _graph(model)
        values = session.run([tensors[name] for name in layers], feed_dict={x: patches})
        for name, value in zip(layers, values):
            results[f"{model}/{name}"] = np.asarray(value, dtype=np.float32).reshape(len(patches), -1)
        session.close()
    np.savez(out_path, **results)


def bench(model: str, repeats: int) -> dict:
    """Seconds to embed one 3-s patch (penultimate / pool5 and the tags) on one thread: median of `repeats` runs."""
    session, x, tensors = _graph(model, threads=1)
    layer = tensors["pool5" if "vgg" in model else "penultimate"]
    patch = np.random.default_rng(0).uniform(0, 2, (1, N_FRAMES, N_MELS)).astype(np.float32)
    for _ in range(3):
        session.run(layer, feed_dict={x: patch})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(layer, feed_dict={x: patch})
        times.append(time.perf_counter() - start)
    import tensorflow as tf

    return {"model": model, "median_s": float(np.median(times)), "tensorflow": tf.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ref = sub.add_parser("reference")
    ref.add_argument("patches")
    ref.add_argument("out")
    ref.add_argument("--layers", required=True, help='JSON {"MSD_musicnn": ["penultimate", ...], ...}')
    timing = sub.add_parser("bench")
    timing.add_argument("--model", default="MSD_musicnn")
    timing.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    if args.command == "reference":
        reference(args.patches, args.out, json.loads(args.layers))
    else:
        print(json.dumps(bench(args.model, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
