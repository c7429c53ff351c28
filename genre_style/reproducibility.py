"""Same command, same bits: the math libraries' reproducible modes, set before torch loads.

torch's CPU wheel does its linear algebra in MKL, which by default picks kernels by the alignment of each buffer and
lets the number of threads it uses follow the machine's load (``MKL_DYNAMIC``). Two identical runs then round
differently in the last bit, and training amplifies that into different epochs chosen, different figures. MKL's
conditional numerical reproducibility (``MKL_CBWR=AUTO,STRICT``: the best code path for this CPU, results independent
of buffer alignment, and for matrix products of the thread count) and a fixed thread count (``MKL_DYNAMIC=FALSE``) remove it. torch's own kernels and
oneDNN split work over a fixed number of OpenMP threads and are deterministic once MKL is. On a GPU, cuBLAS needs a
fixed workspace (``CUBLAS_WORKSPACE_CONFIG``) and torch's deterministic algorithms (``trainer.deterministic``).

MKL reads these variables once, when it starts, so they are set when the package is imported: every entry point
(``python -m genre_style.*``), the processes they start (DDP ranks, parallel sweep trials, preprocessing workers) and
the tests get them. A value already in the environment is left alone. ``GENRE_STYLE_REPRODUCIBLE=0`` turns the whole
thing off, for speed where it costs (``GENRE_STYLE_REPRODUCIBLE=0 python -m benchmarks.bench_train`` measures it).

What is promised: the same machine kind (CPU model, ISA), the same thread count and the same settings give the same
bits. Other thread counts may round differently in torch's own reductions; another CPU kind (AVX2 against AVX-512)
takes other MKL code paths; CPU and GPU never agree to the bit.
"""

from __future__ import annotations

import os
import sys
from typing import Any

SWITCH = "GENRE_STYLE_REPRODUCIBLE"
ENVIRONMENT = {
    "MKL_CBWR": "AUTO,STRICT",  # MKL: alignment- and thread-count-independent results on this CPU's best code path
    "MKL_DYNAMIC": "FALSE",  # MKL: use the threads asked for, not fewer when the machine is busy
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",  # cuBLAS: a fixed workspace, required by deterministic algorithms on a GPU
}
_OFF = {"0", "false", "no", "off"}


def enabled() -> bool:
    """Whether reproducible math is on (the default; `GENRE_STYLE_REPRODUCIBLE=0` turns it off)."""
    return os.environ.get(SWITCH, "1").strip().lower() not in _OFF


def apply_environment() -> bool:
    """Put the reproducible settings in the environment unless switched off or already set. Returns whether they
    reach MKL: not when torch was imported before this package (MKL has read its environment by then)."""
    if not enabled():
        return False
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    return "torch" not in sys.modules


IN_EFFECT = apply_environment()  # at first import: `genre_style/__init__.py` imports this module before anything else


def deterministic_mode() -> bool | str:
    """`trainer.deterministic`'s default (resolver `${reproducible:}`): torch's deterministic algorithms, warning (not
    failing) on an operation that has none, where a GPU is present (cuBLAS and cuDNN pick kernels by timing and some
    use atomics); off on the CPU, where MKL's mode and the fixed thread count already give the same bits and the
    deterministic algorithms cost 20-40 % on the conv path (bench_train --encoder logmel_cnn); off with the switch.
    Resolved when the Trainer is built, after torch is imported."""
    torch = sys.modules.get("torch")
    return "warn" if enabled() and torch is not None and torch.cuda.is_available() else False


def settings() -> dict[str, Any]:
    """What decides the bits of this process's math, for the run's MLflow params and run_info.json."""
    import torch

    recorded: dict[str, Any] = {
        "reproducible": enabled(),
        "reproducible_in_effect": enabled() and IN_EFFECT,
        "torch_threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_version": torch.__version__,
    }
    for name in ENVIRONMENT:
        recorded[name] = os.environ.get(name, "")
    if torch.cuda.is_available():
        recorded["cuda_device"] = torch.cuda.get_device_name(0)
    return recorded
