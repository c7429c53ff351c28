"""A frozen backbone is a cache: its outputs are computed once per clip into the clip store, and training runs the
heads alone on them.

Any encoder whose bottom part is fixed says so through `Encoder.frozen_backbone()` (a `FrozenBackbone`: the module
that holds its weights, the function from the clips the model reads to the backbone's outputs, and a description:
network and layer). The cache is keyed by what decides those outputs and nothing else:

    <cache_dir>/frozen/<clip key>-<backbone identity>.npy     [n_clips, output_dim] float32, every clip of the table

- the clip key: the clip cache's own key (`datamodule.cache_key`: the audio files, the front-end and its settings, the
  genres), plus a digest of the standardisation statistics where `data.loader.standardize` is on;
- the backbone identity (`identity`): a hash of the backbone's class, its description (the layer) and every tensor
  of its state dict (weights and batch-norm statistics), so other weights, another layer or a fine-tuned copy never
  meet a stale file, whatever encoder (musicnn, Hugging Face, ...) it comes from.

A whole table is computed (not one split), so another seed, split or `eval_clips_per_track` reuses the file.
`serve_cached_features` decides whether a training run can use it (`model.encoder.cache`: auto, true, false): the
cache holds the backbone's output for each clip as stored, so whatever changes a clip during training bypasses it:
augmentation (`model.augment.*`), `data.loader.random_crop`, `data.source.unlabelled`; and an objective with a decoder
reconstructs the clip itself (the log-mel), which the cache does not hold. With `cache: auto` those runs go on
without the cache, saying why in one line (they are valid experiments, just at the backbone's speed); with
`cache: true` they are refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import nn

from genre_style.errors import UserError

log = logging.getLogger(__name__)
CACHE_FORMAT = 1  # part of every key: bump when the stored arrays change meaning
SETTINGS = ("auto", True, False)  # model.encoder.cache
BATCH = 64  # clips through the backbone at a time while filling the cache


@dataclass
class FrozenBackbone:
    """The fixed bottom of an encoder: `forward(clips [B, *input_shape]) -> [B, output_dim]`, `module` holding its
    weights (hashed into the key), `description` naming network and layer (two layers can share weights)."""

    module: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    description: str
    output_dim: int


class Rows(Protocol):
    """Clips that can be sliced: an array, or a disk store's rows (`store.StoreRows`)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice) -> Any: ...


@dataclass
class CacheUse:
    """What `serve_cached_features` did: the file (None: in memory only), the clips computed now (0: all reused),
    and how long filling took."""

    path: Path | None
    computed: int
    seconds: float


def checked_setting(value: Any, freeze: str = "all") -> str | bool:
    """`model.encoder.cache` as auto, True or False; a UserError naming the setting otherwise, or where `true` asks
    to cache a backbone that fine-tunes (`freeze` other than all: its outputs change at every step)."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if value not in SETTINGS or (isinstance(value, int) and not isinstance(value, bool)):
        raise UserError(f"model.encoder.cache={value!r} is not auto, true or false", "e.g. model.encoder.cache=auto")
    if value is True and freeze != "all":
        raise UserError(
            f"model.encoder.cache=true, but model.encoder.freeze={freeze}: a backbone that fine-tunes gives other "
            "outputs at every step, so none are cached",
            "model.encoder.freeze=all to train heads on cached outputs, or model.encoder.cache=auto to fine-tune",
        )
    return value


def identity(backbone: FrozenBackbone) -> str:
    """A digest of what decides the backbone's outputs: its class, description and every state-dict tensor."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}|{type(backbone.module).__qualname__}|{backbone.description}".encode())
    for name, tensor in backbone.module.state_dict().items():
        value = tensor.detach().to("cpu").contiguous()
        digest.update(f"|{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.numpy().tobytes() if value.dtype != torch.bfloat16 else value.float().numpy().tobytes())
    return digest.hexdigest()[:20]


def cache_path(cache_dir: str | Path, clip_key: str, backbone: FrozenBackbone) -> Path:
    return Path(cache_dir) / "frozen" / f"{clip_key}-{identity(backbone)}.npy"


def compute_device(home: torch.device) -> torch.device:
    """Where a cache fill runs: this process's GPU where there is one (the fill comes before Lightning moves the model,
    so the module is still on the CPU), else `home`, the module's own device."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    return home


def compute(
    backbone: FrozenBackbone,
    clips: Rows,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """The backbone's outputs `[len(clips), output_dim]` float32, `BATCH` clips at a time, in eval mode, no gradient,
    on `device` (default `compute_device`: a GPU where there is one), the module moved back after; `prepare` maps a
    chunk of clips to the model's input first (standardisation)."""
    module = backbone.module
    was_training = module.training
    home = next(module.parameters(), torch.zeros(0)).device
    device = torch.device(device) if device is not None else compute_device(home)
    module.eval().to(device)
    out = np.empty((len(clips), backbone.output_dim), dtype=np.float32)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    try:  # full float32 on a GPU too (no TF32): the cache stands in for float32 outputs, whatever filled it
        torch.backends.cuda.matmul.allow_tf32 = False
        with torch.no_grad(), torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, allow_tf32=False):
            for start in range(0, len(clips), BATCH):
                chunk = np.asarray(clips[start : start + BATCH], dtype=np.float32)
                if prepare is not None:  # on a copy: a slice of the clip table is a view, standardised in place
                    chunk = chunk.copy()
                    chunk = prepare(chunk)
                x = torch.from_numpy(np.ascontiguousarray(chunk)).to(device)
                out[start : start + len(chunk)] = backbone.forward(x).float().cpu().numpy()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        module.to(home).train(was_training)
    return out


def features(
    backbone: FrozenBackbone,
    clips: Rows,
    clip_key: str | None,
    cache_dir: str | Path | None,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, Path | None, int]:
    """(outputs for every clip, the cache file or None, clips computed now): read from
    `<cache_dir>/frozen/<clip_key>-<identity>.npy` when it is there and whole, else computed and written.
    No `clip_key` or `cache_dir` (clips given in memory): computed, not kept."""
    path = cache_path(cache_dir, clip_key, backbone) if clip_key and cache_dir else None
    return load_or_compute(path, (len(clips), backbone.output_dim), lambda: compute(backbone, clips, prepare, device))


def load_or_compute(
    path: Path | None, shape: tuple[int, int], make: Callable[[], np.ndarray]
) -> tuple[np.ndarray, Path | None, int]:
    """(the array at `path` if it is there with `shape`, else `make()` written there atomically (a parallel run
    reads all or nothing), the file or None, rows computed now)."""
    if path is not None and path.is_file():
        try:
            cached = np.load(path)
            if cached.shape == shape:
                return cached, path, 0
            log.warning("frozen-backbone cache %s holds %s, expected %s: recomputing it", path, cached.shape, shape)
        except (OSError, ValueError) as exc:
            log.warning("frozen-backbone cache %s is unreadable (%s): recomputing it", path, exc)
    values = make()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                np.save(out, values)
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            log.warning("could not write the frozen-backbone cache %s (%s); going on without it", path, exc)
            path = None
    return values, path, len(values)


# --- training: the heads on cached outputs ---------------------------------------------------------------------


def bypass_reasons(model: Any, datamodule: Any) -> list[str]:
    """Why the cache cannot stand in for the clips in this run (empty: it can): each thing that changes a clip, or
    reads it, during training."""
    reasons = []
    if getattr(model, "has_decoder", False):
        reasons.append(f"{type(model).__name__} reconstructs the clips themselves (use model=two_layer for a head alone)")
    if getattr(getattr(model, "augment", None), "active", False):
        reasons.append("augmentation changes the clips at every step (model.augment.*)")
    if getattr(datamodule, "random_crop", False):
        reasons.append("data.loader.random_crop cuts new clips at every step")
    if getattr(datamodule, "unlabelled", None):
        reasons.append("data.source.unlabelled's clips are not in the table the cache is keyed by")
    return reasons


def _clip_key(datamodule: Any) -> str | None:
    """The clip cache's key, plus the standardisation's digest where it is on; None for clips given in memory."""
    key = str(datamodule.cache_key)
    if key in ("in-memory", "no-cache"):
        return None
    if datamodule.mean is not None:
        stats = np.concatenate([np.ravel(datamodule.mean), np.ravel(datamodule.std)]).astype(np.float32)
        key += "-z" + hashlib.sha256(stats.tobytes()).hexdigest()[:8]
    return key


def serve_cached_features(
    model: Any, datamodule: Any, cache_dir: str | Path | None, device: torch.device | str | None = None
) -> CacheUse | None:
    """Where the model's encoder has a frozen backbone and `model.encoder.cache` allows it: fill (or reuse) the cache
        for the datamodule's clips, hand the datamodule the outputs of each split to serve instead of the clips, and
        switch the encoder to reading them (`Encoder.cached_input`). None where the run goes on without the cache (said
        in one line where the encoder has a frozen backbone). `device`: where the fill runs (the trainer's, so
    `trainer=cpu` fills on the CPU; None: `compute_device`). Undo with `stop_serving` before the model meets clips again."""
    encoder: Any = getattr(model, "encoder", None)
    frozen = getattr(encoder, "frozen_backbone", None)
    backbone: FrozenBackbone | None = frozen() if callable(frozen) else None
    setting = checked_setting(getattr(encoder, "cache", "auto"))
    if backbone is None or setting is False:
        return None
    reasons = bypass_reasons(model, datamodule)
    if reasons:
        if setting is True:
            raise UserError(
                f"model.encoder.cache=true, but the frozen backbone's outputs cannot stand in for the clips: {reasons[0]}",
                "model.encoder.cache=auto (go on without it) or switch that off",
            )
        log.warning("frozen backbone (%s): not cached, computed at every step: %s", backbone.description, "; ".join(reasons))
        return None
    started = time.perf_counter()
    store = getattr(datamodule, "store", None)
    if store is not None:
        from genre_style.data.clip_store import StoreRows

        clips: Rows = StoreRows(store, np.arange(len(store)))
    else:
        table = datamodule.table
        clips = table.features.reshape(len(table), *datamodule.input_shape)
    mean, std = datamodule.mean, datamodule.std

    def prepare(chunk: np.ndarray) -> np.ndarray:
        from genre_style.data.preprocessing import standardize

        return standardize(chunk, mean, std)

    values, path, computed = features(backbone, clips, _clip_key(datamodule), cache_dir, prepare, device)
    datamodule.serve_features({name: torch.from_numpy(values[idx]) for name, idx in datamodule.indices.items()})
    encoder.cached_input = True
    seconds = time.perf_counter() - started
    log.info(
        "frozen backbone (%s): %s; the heads train on its %d-d outputs",
        backbone.description,
        f"{computed} clips computed in {seconds:.1f} s" + (f", cached at {path}" if path else "")
        if computed
        else f"cached outputs of {len(values)} clips reused ({path})",
        backbone.output_dim,
    )
    return CacheUse(path, computed, seconds)


def stop_serving(model: Any, datamodule: Any) -> None:
    """The model reads clips again (its checkpoint and the logged model always do), the datamodule serves them."""
    encoder = getattr(model, "encoder", None)
    if encoder is not None and getattr(encoder, "cached_input", False):
        encoder.cached_input = False
    if getattr(datamodule, "served", None):
        datamodule.serve_features(None)
