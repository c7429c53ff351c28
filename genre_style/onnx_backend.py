"""A trained model as an ONNX file, and running one through onnxruntime (`embed --backend onnx`, `predict`).

The graph (`export_onnx`) is the standardisation, the encoder and the classifier:

    input   features   float32 [batch, *feature_shape]  the front-end's output for each clip, NOT standardised:
                                                     `clip_features(clips, spec).reshape(batch, *feature_shape)`
                                                     (e.g. [batch, 64, 79] for experiment=best's log-mel maps,
                                                     [batch, 500] for the paper's raw_pool vectors)
    output  embedding  float32 [batch, D]             the bottleneck
    output  logits     float32 [batch, genres]        where the model has a classifier (softmax: probabilities)

The front-end (decoding, resampling, cutting clips, mel/MFCC/pooling) stays in numpy and librosa
(`genre_style.data`): its settings, the genre names and the shapes are kept in the file's metadata (`genre_style`, JSON),
so `OnnxRunner` needs nothing but the file. onnx and onnxruntime come with `pip install 'genre-style[onnx]'`.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from genre_style.data.audio import ClipSpec
from genre_style.errors import UserError
from genre_style.inference import Embedder, Preprocessing

METADATA_KEY = "genre_style"
FORMAT = 1
INSTALL = "pip install 'genre-style[onnx]' (onnx and onnxruntime)"


class _Graph:
    """Built lazily (torch is imported only to export)."""

    @staticmethod
    def module(embedder: Embedder) -> Any:
        import torch

        pre = embedder.preprocessing
        mean = None if pre.mean is None else torch.as_tensor(pre.mean, dtype=torch.float32)
        std = None if pre.std is None else torch.as_tensor(pre.std, dtype=torch.float32)

        class Exported(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                # A copy in plain layout: the graph holds plain weights, and the embedder's model stays as it was.
                self.model = copy.deepcopy(embedder.model).to(memory_format=torch.contiguous_format)

            def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
                x = (features - mean) / std if mean is not None and std is not None else features
                out = self.model(x)
                return (out.embedding,) if out.logits is None else (out.embedding, out.logits)

        return Exported().eval()


def export_onnx(embedder: Embedder, path: str | Path, opset: int = 17) -> Path:
    """Write `embedder`'s model to `path` as ONNX (the module docstring says the graph and its shapes) with a dynamic
    batch axis; a model whose forward pass loops over the batch in Python (musicnn's fixed front-end runs a clip at a
    time), which tracing bakes into the graph, is exported for one clip a call instead (`batch: 1` in the metadata:
    `OnnxRunner` feeds it clip by clip). Uses torch's TorchScript-based exporter (`dynamo=False`): no onnxscript."""
    try:
        import onnx
    except ImportError:
        raise UserError("exporting to ONNX needs the onnx package", INSTALL) from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = _Graph.module(embedder).to("cpu")
    spec = embedder.spec
    outputs = ["embedding", *(["logits"] if embedder.has_classifier else [])]
    batch = 0 if _trace(module, path, spec.feature_shape, outputs, opset, dynamic=True) else 1
    if batch:
        _trace(module, path, spec.feature_shape, outputs, opset, dynamic=False)
    graph = onnx.load(str(path))
    meta = {
        "format": FORMAT,
        "spec": spec.as_dict(),
        "genres": embedder.genres,
        "outputs": outputs,
        "feature_shape": list(spec.feature_shape),
        "batch": batch,  # 0: any batch size; 1: one clip a call
        "model_class": f"{type(embedder.model).__module__}.{type(embedder.model).__name__}",
    }
    graph.metadata_props.add(key=METADATA_KEY, value=json.dumps(meta))
    graph.doc_string = (
        f"genre-style {meta['model_class']}: features float32 [{'batch' if not batch else 1}, "
        f"{', '.join(map(str, spec.feature_shape))}] (front-end {spec.features}, not standardised) -> {' and '.join(outputs)}"
    )
    onnx.save(graph, str(path))
    return path


def _trace(module: Any, path: Path, shape: Sequence[int], outputs: list[str], opset: int, dynamic: bool) -> bool:
    """Export `module` to `path`; with `dynamic`, whether the graph runs at a batch size other than the one traced."""
    import torch

    example = torch.zeros((2 if dynamic else 1, *shape), dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice: it is the one that needs no onnxscript
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=["features"],
            output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in ["features", *outputs]} if dynamic else None,
            opset_version=opset,
            dynamo=False,
        )
    if not dynamic:
        return True
    try:
        import onnxruntime as ort
    except ImportError:
        return True  # not checked here: the export command's parity check runs it
    quiet = ort.SessionOptions()
    quiet.log_severity_level = 4  # a failing probe is an answer, not an error to print
    session = ort.InferenceSession(str(path), quiet, providers=["CPUExecutionProvider"])
    try:
        session.run(None, {"features": np.zeros((3, *shape), dtype=np.float32)})
    except Exception:
        return False
    return True


def onnx_providers(device: str) -> list[str]:
    """onnxruntime's execution providers for `--device`: CUDA where asked (or `auto` and available), else the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "auto":
        return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise UserError(
                f"--device {device}: this onnxruntime has no CUDA provider", "pip install onnxruntime-gpu, or --device cpu"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device != "cpu":
        raise UserError(f"--device {device} is not one the ONNX backend runs on", "use --device auto, cpu or cuda")
    return ["CPUExecutionProvider"]


class OnnxRunner:
    """An exported model through onnxruntime: the `batch.Runner` for `embed --backend onnx` and `predict`."""

    def __init__(self, path: str | Path, device: str = "auto") -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("--backend onnx needs onnxruntime", INSTALL) from None
        if not Path(path).is_file():
            raise UserError(f"ONNX model {path} does not exist", "write one with python -m genre_style.export MODEL --onnx FILE")
        try:
            self.session = ort.InferenceSession(str(path), providers=onnx_providers(device))
        except UserError:
            raise
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(
                f"cannot read ONNX model {path} ({reason})", "pass a file written by python -m genre_style.export"
            ) from None
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if raw is None:
            raise UserError(
                f"{path} was not exported by genre-style", "write one with python -m genre_style.export MODEL --onnx FILE"
            )
        meta = json.loads(raw)
        known = set(ClipSpec.__dataclass_fields__)
        # Standardisation is inside the graph: the runner hands it the front-end's features as they are.
        self.preprocessing = Preprocessing(ClipSpec(**{k: v for k, v in meta["spec"].items() if k in known}))
        self.genres: list[str] = list(meta["genres"])
        self.outputs: list[str] = list(meta["outputs"])
        self.one_clip_a_call = meta.get("batch", 0) == 1

    @property
    def has_classifier(self) -> bool:
        return "logits" in self.outputs

    @property
    def layer_names(self) -> list[str]:
        return list(self.outputs)

    def run(self, x: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not self.one_clip_a_call:
            return dict(zip(layers, self.session.run(list(layers), {"features": x})))
        clips = [self.session.run(list(layers), {"features": x[i : i + 1]}) for i in range(len(x))]
        return {name: np.concatenate([clip[j] for clip in clips]) for j, name in enumerate(layers)}
