"""Many audio files through a model, a batch of windows at a time: what `embed` and `predict` share.

A file is streamed in overlapping windows (`data.stream.windows`: memory stays flat on an hour-long file), each batch
turned into the model's features with the preprocessing saved in its checkpoint, and run through a *runner*: the
PyTorch model (`TorchRunner`, any layer, any device) or its ONNX export (`onnx_backend.OnnxRunner`). With the model's
own hop, the windows are exactly the clips `inference.Embedder.embed_file` cuts, so the numbers are the same.
"""

from __future__ import annotations

import glob
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

import numpy as np

from genre_style.data.gtzan import AUDIO_EXTENSIONS
from genre_style.data.stream import windows
from genre_style.errors import AudioError, UserError
from genre_style.inference import Embedder, Preprocessing, song_probabilities

log = logging.getLogger(__name__)

EMBEDDING, LOGITS = "embedding", "logits"


@dataclass(frozen=True)
class AudioInput:
    """One file to process and the name its outputs get (`--out-dir`): its path below the folder given, or its stem."""

    path: Path
    name: Path


def resolve_inputs(inputs: Sequence[str | Path]) -> list[AudioInput]:
    """Files, folders (every audio file below, sorted) and glob patterns (`'music/**/*.mp3'`, quoted so the shell leaves
    them to us); a name that is none of these is a UserError."""
    found: list[AudioInput] = []
    for given in map(str, inputs):
        item = Path(given)
        if item.is_dir():
            found += [
                AudioInput(p, p.relative_to(item).with_suffix(""))
                for p in sorted(item.rglob("*"))
                if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            ]
        elif item.exists():
            found.append(AudioInput(item, Path(item.stem)))
        elif any(c in given for c in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(given, recursive=True)) if Path(m).is_file()]
            if not matches:
                raise UserError(f"no file matches {given}", "check the pattern (quote it: '~/music/**/*.mp3')")
            found += [AudioInput(p, Path(p.stem)) for p in matches]
        else:
            raise UserError(f"input {given} does not exist", "pass audio files, folders that hold them, or a glob pattern")
    if not found:
        raise UserError(
            f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {[str(i) for i in inputs]}", "pass audio files or folders"
        )
    return found


class Runner(Protocol):
    """What turns a batch of model inputs into named outputs: `run(x [n, *feature_shape], layers) -> {layer: [n, D]}`."""

    preprocessing: Preprocessing
    genres: list[str]

    @property
    def has_classifier(self) -> bool: ...

    @property
    def layer_names(self) -> list[str]: ...

    def run(self, x: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]: ...


def resolve_device(device: str) -> Any:
    """A `torch.device` from `auto` (a CUDA GPU, else Apple's MPS, else the CPU), `cpu`, `cuda`, `cuda:1`, `mps`."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError):
        raise UserError(f"unknown device {device!r}", "use --device auto, cpu, cuda, cuda:<n> or mps") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: torch sees no CUDA GPU here", "use --device cpu (or auto)")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise UserError(f"--device {device}: there are {torch.cuda.device_count()} CUDA GPU(s)", "use --device cuda:0")
    if chosen.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError(f"--device {device}: MPS is not available here", "use --device cpu (or auto)")
    return chosen


class TorchRunner:
    """The PyTorch model of an `Embedder` on a device; any encoder module's output can be read (`encoder.<name>`),
    averaged over its time and frequency axes to one vector per window."""

    def __init__(self, embedder: Embedder, device: str = "cpu") -> None:
        self.embedder, self.preprocessing, self.genres = embedder, embedder.preprocessing, embedder.genres
        target = resolve_device(device)
        if target.type != "cpu":
            from genre_style.speedups import to_preferred_layout

            embedder.model.to(target)
            to_preferred_layout(embedder.model, target.type)
        self.device = target

    @property
    def has_classifier(self) -> bool:
        return self.embedder.has_classifier

    @property
    def layer_names(self) -> list[str]:
        """`embedding` (the bottleneck), `logits` where the model has a classifier, then each of the encoder's
        modules (`encoder.features.0`: a log-mel CNN's first conv block), outermost first."""
        import torch

        encoder = getattr(self.embedder.model, "encoder", None)
        containers = (torch.nn.ModuleList, torch.nn.ModuleDict)  # never called themselves: their members are
        modules = encoder.named_modules() if encoder is not None else []
        blocks = [f"encoder.{name}" for name, module in modules if name and not isinstance(module, containers)]
        return [EMBEDDING, *([LOGITS] if self.has_classifier else []), *blocks]

    def run(self, x: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
        import torch

        captured: dict[str, Any] = {}
        hooks = []
        modules = dict(self.embedder.model.encoder.named_modules()) if any(n.startswith("encoder.") for n in layers) else {}
        for name in layers:
            if name.startswith("encoder."):
                hook = lambda _m, _i, out, name=name: captured.__setitem__(name, out)  # noqa: E731
                hooks.append(modules[name.removeprefix("encoder.")].register_forward_hook(hook))
        try:
            with torch.no_grad():
                out = self.embedder.model(torch.as_tensor(x, device=self.device))
        finally:
            for hook in hooks:
                hook.remove()
        result = {}
        for name in layers:
            value = out.embedding if name == EMBEDDING else out.logits if name == LOGITS else captured.get(name)
            if not isinstance(value, torch.Tensor):
                raise UserError(
                    f"layer {name} gives {'no output' if value is None else type(value).__name__} in the forward pass, "
                    "not one tensor",
                    "choose one of its sub-modules (--layer with a wrong name lists them)",
                )
            if value.ndim > 2:  # a conv block's [n, C, *time/frequency]: one C-vector per window
                value = value.flatten(2).mean(dim=-1)
            result[name] = value.float().cpu().numpy()
        return result


def load_runner(model: str, backend: str | None = None, device: str = "auto", tracking_uri: str | None = None) -> Runner:
    """The runner for a MODEL argument: its ONNX export through onnxruntime (`backend="onnx"`, the default for a
    `.onnx` file), or the PyTorch model (`genre_style.loading.load_model`) on `device`."""
    backend = backend or ("onnx" if str(model).endswith(".onnx") else "torch")
    if backend == "onnx":
        from genre_style.onnx_backend import OnnxRunner

        return OnnxRunner(model, device)
    if str(model).endswith(".onnx"):
        raise UserError(f"{model} is an ONNX model", "run it with --backend onnx")
    from genre_style.loading import load_model

    return TorchRunner(load_model(model, tracking_uri), device)


def check_layer(runner: Runner, layer: str) -> None:
    """A UserError listing the layers (those 3 deep at most: a pretrained backbone has dozens) for an unknown one."""
    names = runner.layer_names
    if layer not in names:
        shown = [n for n in names if n.count(".") <= 3]
        more = f" (and {len(names) - len(shown)} deeper modules)" if len(shown) < len(names) else ""
        raise UserError(f"the model has no layer {layer!r}", f"choose --layer from: {', '.join(shown)}{more}")


def hop_samples(preprocessing: Preprocessing, hop_s: float | None) -> int:
    """Samples between windows: the model's own clip hop when None."""
    spec = preprocessing.spec
    if hop_s is None:
        return spec.hop_samples
    if not (math.isfinite(hop_s) and hop_s > 0) or round(hop_s * spec.sample_rate) < 1:
        raise UserError(f"--hop {hop_s} must be a positive number of seconds", "e.g. --hop 0.5")
    return round(hop_s * spec.sample_rate)


@dataclass
class FileOutputs:
    """One file through a runner: each window's start in seconds `[n]`, the chosen layer `[n, D]` float32 and the
    logits `[n, G]` (None without a classifier or when not asked)."""

    start_s: np.ndarray
    values: np.ndarray
    logits: np.ndarray | None


def embed_stream(
    runner: Runner,
    path: str | Path,
    layer: str = EMBEDDING,
    hop_s: float | None = None,
    batch_size: int = 64,
    max_clips: int | None = None,
    with_logits: bool = True,
) -> FileOutputs:
    """One file, streamed: AudioError when it cannot be used."""
    pre = runner.preprocessing
    spec = pre.spec
    layers = [layer, *([LOGITS] if with_logits and runner.has_classifier and layer != LOGITS else [])]
    starts, values, logits = [], [], []
    for window_starts, clips in windows(
        path, spec.sample_rate, spec.segment_samples, hop_samples(pre, hop_s), batch_size, max_clips
    ):
        out = runner.run(pre.features(clips), layers)
        starts.append(window_starts)
        values.append(out[layer].astype(np.float32, copy=False))
        if LOGITS in layers:
            logits.append(out[LOGITS])
    if not starts:
        raise AudioError("no window of audio")
    return FileOutputs(
        np.concatenate(starts) / spec.sample_rate,
        np.concatenate(values),
        np.concatenate(logits) if logits else None,
    )


def progress(items: Sequence[Any], what: str = "file") -> Iterable[Any]:
    """A bar over `items` on stderr (tqdm; off when stderr is no terminal, so logs and pipes stay clean)."""
    from tqdm.auto import tqdm

    return tqdm(items, unit=what, file=sys.stderr, disable=None, dynamic_ncols=True)


def each_file(
    runner: Runner, files: Sequence[AudioInput], skipped: list[dict], **options: Any
) -> Iterator[tuple[AudioInput, FileOutputs]]:
    """`embed_stream` over the files with a progress bar; a file that cannot be used is said once on stderr, added to
    `skipped` ({"path", "reason"}) and passed over."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        for item in progress(files):
            try:
                outputs = embed_stream(runner, item.path, **options)
            except AudioError as exc:
                tqdm.write(f"genre-style: skipped {item.path}: {exc}", file=sys.stderr)  # above the bar, once
                skipped.append({"path": str(item.path), "reason": str(exc)})
                continue
            yield item, outputs


def tables(runner: Runner, files: Sequence[AudioInput], **options: Any) -> tuple[Any, Any, list[dict]]:
    """(clip table, track table, skipped files) as pandas DataFrames: a row per window (start, genre probabilities,
    the layer's values `emb_*`, float32) and a row per file (its verdict, `inference.song_probabilities`, and the mean
    of its windows' values)."""
    import pandas as pd

    clip_frames, track_rows, skipped = [], [], []  # type: list[Any], list[dict], list[dict]
    genres = runner.genres
    for item, out in each_file(runner, files, skipped, **options):
        n = len(out.start_s)
        clips: dict[str, Any] = {"path": [str(item.path)] * n, "clip": np.arange(n), "start_s": np.round(out.start_s, 3)}
        track: dict[str, Any] = {"path": str(item.path), "clips": n}
        if out.logits is not None:
            from genre_style.inference import softmax

            probs = softmax(out.logits.astype(np.float64))
            clips["predicted_genre"] = [genres[i] for i in probs.argmax(axis=1)]
            clips.update({f"prob_{g}": probs[:, j] for j, g in enumerate(genres)})
            song = song_probabilities(out.logits)
            track["predicted_genre"] = genres[int(song.argmax())]
            track.update({f"prob_{g}": float(p) for g, p in zip(genres, song)})
        clips.update({f"emb_{j:03d}": out.values[:, j] for j in range(out.values.shape[1])})
        track.update({f"emb_{j:03d}": np.float32(v) for j, v in enumerate(out.values.mean(axis=0, dtype=np.float64))})
        clip_frames.append(pd.DataFrame(clips))
        track_rows.append(track)
    clip_table = pd.concat(clip_frames, ignore_index=True) if clip_frames else pd.DataFrame()
    return clip_table, pd.DataFrame(track_rows), skipped


def write_table(frame: Any, path: Path) -> Path:
    """A table as Parquet (`.parquet`) or CSV (anything else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def skipped_summary(skipped: Sequence[dict], total: int) -> str:
    """One line: how many of the files were skipped, and which (each one's reason was said as it was skipped)."""
    paths = [item["path"] for item in skipped]
    more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
    return f"skipped {len(paths)} of {total} file(s): {', '.join(paths[:5])}{more}"


def nothing_read(total: int) -> UserError:
    """The error of a command none of whose inputs could be read (exit code 2)."""
    return UserError(
        f"none of the {total} input file(s) could be read (the reasons are above)",
        "pass audio files (wav, flac, mp3, ogg, au) or folders that hold them",
    )
