"""Reading a model file someone may have sent you: tensors and plain data only, so nothing in the file runs.

A checkpoint is a pickle, and a pickle can name any Python callable to run while it loads (PyTorch made
`weights_only=True` its default in 2.6 for that reason). Every path that reads a genre-style checkpoint, whether
`predict`, `embed`, `transfer`, `downstream`, the HEAR module, an MLflow model, a resume or a test from the best
checkpoint, reads it here, in three checks:

1. `torch.load(weights_only=True)`: tensors, numbers, strings, lists, dicts, plus numpy arrays (older full
   checkpoints hold numpy's random state), and no other object;
2. the model class it names must be a `GenreModel` in `genre_style.models` (`model_class` is imported and called);
3. every `_target_` in its hyperparameters (the encoder, the optimiser; Hydra instantiates them) must be a
   `torch.nn.Module`, optimiser or scheduler class in `genre_style` or `torch`, or in a package you name in
   `$GENRE_STYLE_TRUSTED_MODULES` (comma-separated module prefixes: your own encoders).

A file that fails gets a one-line error; `python -m genre_style.convert_checkpoint` rewrites a file you trust.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
from pathlib import Path
from typing import Any, Iterator

from genre_style.errors import UserError

TRUSTED_MODULES = ("genre_style.", "torch.nn.", "torch.optim.")
TRUSTED_MODULES_ENV = "GENRE_STYLE_TRUSTED_MODULES"
CONVERT_HINT = (
    "if you trust the file and who sent it, rewrite it as plain data: python -m genre_style.convert_checkpoint {path} {new}"
)


@contextlib.contextmanager
def numpy_arrays_allowed() -> Iterator[None]:
    """Let `torch.load(weights_only=True)` rebuild numpy arrays (data, not code): older full checkpoints hold numpy's
    random state as one. Applies to every weights-only load inside the block (Lightning's resume too)."""
    import numpy as np
    import torch

    dtypes = [type(np.dtype(t)) for t in np.sctypeDict.values() if np.dtype(t).kind in "biuf"]
    multiarray = (getattr(np, "_core", None) or np.core).multiarray  # numpy 2 moved it: a pickle names either module
    allowed: list[Any] = [np.ndarray, np.dtype, *dtypes]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed += [(multiarray._reconstruct, f"{module}._reconstruct"), (multiarray.scalar, f"{module}.scalar")]
    with torch.serialization.safe_globals(allowed):
        yield


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's contents, loaded without running anything in it, and checked to be genre-style's (see above).
    One-line `UserError` for an unreadable file, one holding other objects, or one naming code outside the trust."""
    import torch

    try:
        with numpy_arrays_allowed():
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        culprit = _first_global(str(exc))
        raise UserError(
            f"{path} holds Python objects besides weights and plain data{culprit}: refused, loading it could run code",
            CONVERT_HINT.format(path=path, new=_converted_name(path)),
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise UserError(
            f"cannot read checkpoint {path} ({str(exc).splitlines()[0][:200]})",
            "pass a best.ckpt from a run, or an MLflow run id",
        ) from None
    check_checkpoint(state, path)
    return state


def check_checkpoint(state: Any, path: str | Path) -> None:
    """Raise a one-line UserError unless `state` is a genre-style checkpoint that names only trusted code."""
    if not isinstance(state, dict) or not isinstance(state.get("genre_style"), dict) or not state.get("GenreDataModule"):
        raise UserError(f"{path} was not written by genre-style training", "pass a best.ckpt from a run, or an MLflow run id")
    model_class(str(state["genre_style"].get("model_class", "")), path)
    for target in _targets(state.get("hyper_parameters", {})):
        check_target(target, path)


def model_class(name: str, path: str | Path = "the checkpoint") -> type:
    """The `GenreModel` subclass a checkpoint names: only classes of `genre_style.models` are imported."""
    from genre_style.models.base import GenreModel

    module_name, _, class_name = name.rpartition(".")
    found = _resolve(module_name, class_name) if module_name.startswith("genre_style.models.") else None
    if not (isinstance(found, type) and issubclass(found, GenreModel)):
        raise UserError(
            f"{path} names the model class {name!r}, which is not a genre-style model: refused",
            "load checkpoints written by genre-style training (genre_style.models.*)",
        )
    return found


def check_target(target: str, path: str | Path = "the checkpoint") -> None:
    """A hyperparameter's `_target_` must be a module, optimiser or scheduler class under a trusted prefix."""
    import torch

    prefixes = TRUSTED_MODULES + tuple(
        p.strip().rstrip(".") + "." for p in os.environ.get(TRUSTED_MODULES_ENV, "").split(",") if p.strip()
    )
    module_name, _, attribute = target.rpartition(".")
    kinds = (torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler)
    found = _resolve(module_name, attribute) if target.startswith(prefixes) else None
    if not (isinstance(found, type) and issubclass(found, kinds)):
        raise UserError(
            f"{path} asks to build {target!r}, which is not a trusted module, optimiser or scheduler class: refused",
            f"if it is your own encoder's package, add it to ${TRUSTED_MODULES_ENV} (e.g. {TRUSTED_MODULES_ENV}=mypackage)",
        )


def _resolve(module_name: str, attribute: str) -> Any:
    try:
        return getattr(importlib.import_module(module_name), attribute, None)
    except ImportError:
        return None


def _targets(node: Any) -> Iterator[str]:
    """Every `_target_` value in nested dicts and lists (Hydra instantiates nested nodes too)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_":
                yield str(value)
            else:
                yield from _targets(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _targets(value)


def _first_global(message: str) -> str:
    """`(it names os.system)` from torch's weights-only error message, where it says which global it met."""
    for line in message.splitlines():
        for marker in ("Unsupported global: GLOBAL ", "unsupported GLOBAL "):
            if marker in line:
                name = line.split(marker, 1)[1].split()[0].rstrip(".,")
                return f" (it names {name})"
    return ""


def _converted_name(path: str | Path) -> str:
    path = Path(path)
    return str(path.with_name(f"{path.stem}.plain{path.suffix or '.ckpt'}"))
