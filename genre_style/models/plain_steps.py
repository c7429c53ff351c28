"""Backward and optimiser step without Lightning's per-step dispatch, where that dispatch would do nothing.

Under manual optimisation, `manual_backward` and `LightningOptimizer.step` run the precision plugin and the
`on_before_backward`, `on_after_backward` and `on_before_optimizer_step` hooks of every callback and of the
module: a measurable share of a small model's step (`python -m benchmarks.bench_train`; figures in
docs/performance.md). On one device, in full precision, with no profiler and nobody overriding those hooks, all of
it reduces to `loss.backward()` and `optimizer.step()`, so that is what runs; anything else takes Lightning's path.
The step counters behind `trainer.global_step` are kept either way.

Kept against the rule "stock parts unless a benchmark shows > 5 %": `python -m benchmarks.bench_train` measures
it (docs/performance.md, "Plain steps").
Private Lightning API used, and why: `LightningOptimizer._on_before_step` / `_on_after_step`, the manual loop's
step counting (`trainer.global_step`, which checkpointing relies on); there is no public hook for it. Where a
Lightning release lacks them, `plain_steps_suffice` says no and Lightning's own path runs.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.strategies import SingleDeviceStrategy

STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


def _overrides(obj: object, base: type, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if getattr(type(obj), name) is not getattr(base, name)]


def plain_steps_suffice(trainer: pl.Trainer, module: pl.LightningModule) -> bool:
    """Whether Lightning's wrappers around backward and the optimiser step would only call empty hooks."""
    return (
        all(hasattr(module.optimizers(), name) for name in ("_on_before_step", "_on_after_step"))  # private: see above
        and type(trainer.strategy) is SingleDeviceStrategy  # DDP and others prepare the backward pass
        and type(trainer.precision_plugin) is Precision  # "32-true": no loss scaling, no autocast
        and isinstance(trainer.profiler, PassThroughProfiler)  # type: ignore[attr-defined]  # a property Lightning adds
        and not any(_overrides(callback, pl.Callback, STEP_HOOKS) for callback in trainer.callbacks)  # type: ignore[attr-defined]
        and not _overrides(module, pl.LightningModule, (*STEP_HOOKS, "backward"))
    )


def plain_step(optimizer: LightningOptimizer, loss: torch.Tensor, clip_norm: float | None) -> None:
    """`manual_backward(loss)`, norm clipping and `optimizer.step()` as Lightning runs them when no hook
    listens. `_on_before_step`/`_on_after_step` are the manual loop's step counting (`trainer.global_step`)."""
    optimizer.zero_grad()
    loss.backward()
    if clip_norm:
        # what Precision.clip_grad_by_norm runs, on the same parameters in the same order
        torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], clip_norm)
    optimizer._on_before_step()
    optimizer.optimizer.step()
    optimizer._on_after_step()
