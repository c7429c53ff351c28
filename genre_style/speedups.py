"""How a model's math runs fastest on the hardware at hand: memory layout and compilation, decided in one place.

Why, in short (the figures: `python -m benchmarks.bench_train --encoder logmel_cnn`, docs/performance.md "#30" and
docs/training.md):
- **channels-last** weights and activations: oneDNN's convolutions and max pooling run on NHWC directly, so a CPU
  step is faster; the values differ from NCHW's only by float reassociation and repeat to the bit run after run.
  Only 2-D convolutions have such a layout; on a GPU in float32 it is not measured here, so `auto` keeps it to the CPU.
- **torch.compile** (Inductor): on the CPU a compiled step was slower than eager, after a long first compile, so
  `auto` never compiles on a CPU; on a GPU, where Inductor's fused Triton kernels are the known win, it compiles
  convolutional models for runs of at least `min_compile_steps` optimiser steps (not measured here). MLP models (the
  paper's, the demo's) stay eager under `auto`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from genre_style.errors import UserError

CHOICES = ("auto", True, False)


def checked_choice(name: str, value: Any) -> str | bool:
    """`auto`, true or false (YAML gives booleans; the command line may give the strings)."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if value not in CHOICES or (isinstance(value, str) and value != "auto"):
        raise UserError(f"{name}={value!r} is not auto, true or false", f"e.g. {name}=auto")
    return value


def has_conv(model: Any, dims: tuple[int, ...] = (1, 2)) -> bool:
    """Whether the model has a convolution of one of `dims` (1-D, 2-D): channels-last speeds up only 2-D ones,
    `auto` compiles either."""
    import torch

    kinds = tuple({1: torch.nn.Conv1d, 2: torch.nn.Conv2d}[d] for d in dims)
    return any(isinstance(m, kinds) for m in model.modules())


def channels_last_pays(model: Any, device_type: str, setting: str | bool = "auto") -> bool:
    """`setting` true/false as given; `auto`: a model with 2-D convolutions on the CPU (measured above), unless a
    module of it says `channels_last = False` (pretrained musicnn: its band-wide kernels run slower so)."""
    setting = checked_choice("channels_last", setting)
    if setting == "auto":
        declined = any(getattr(m, "channels_last", None) is False for m in model.modules())
        return device_type == "cpu" and has_conv(model, (2,)) and not declined
    return bool(setting) and has_conv(model, (2,))


def to_preferred_layout(model: Any, device_type: str, setting: str | bool = "auto") -> bool:
    """Put the model's 4-D weights in channels-last where that pays (in place: the parameters stay the same objects,
    so an optimiser built on them keeps them). Checkpoints hold the same values either way and load into either
    layout. Returns whether it did."""
    import torch

    if not channels_last_pays(model, device_type, setting):
        return False
    model.to(memory_format=torch.channels_last)
    return True


def compile_pays(
    model: Any, device_type: str, optimiser_steps: int, setting: str | bool = "auto", min_compile_steps: int = 1000
) -> bool:
    """`setting` true/false as given; `auto`: a convolutional model's GPU run of at least `min_compile_steps` optimiser
    steps (measured above: on the CPU a compiled step is slower, so the compile time is never earned back there)."""
    setting = checked_choice("compile", setting)
    if setting == "auto":
        return device_type == "cuda" and has_conv(model) and optimiser_steps >= min_compile_steps
    return bool(setting)


def use_compile_cache(cache_dir: str | Path | None) -> None:
    """Inductor's caches (compiled graphs, kernels) under `cache_dir`, so sweep trials, resumed runs and later runs
    on this machine or a shared disk load what an earlier one compiled; `TORCHINDUCTOR_CACHE_DIR` where set wins."""
    if cache_dir:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir))


def bf16_is_native() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX); without it, bf16 autocast is emulated:
    measured 7x slower than float32 on this project's CPU machine."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
