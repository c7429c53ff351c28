"""The model's memory layout and compilation for a fit, chosen from the hardware and the run (`genre_style.speedups`).

python -m genre_style.train experiment=best                                   # auto: channels-last on a CPU
python -m genre_style.train experiment=best callbacks.acceleration.compile=true
python -m genre_style.train experiment=best callbacks.acceleration.channels_last=false
"""

from __future__ import annotations

import logging

import lightning.pytorch as pl

from genre_style.speedups import bf16_is_native, checked_choice, compile_pays, to_preferred_layout, use_compile_cache

log = logging.getLogger(__name__)


class Acceleration(pl.Callback):
    """Channels-last layout when the fit is set up (before optimisers, weight averages and DDP see the weights) and
    `torch.compile` when it starts. Compiled in place (`nn.Module.compile`): the state dict, checkpoints, `embed` and
    the MLflow model are those of the eager module; val and test run compiled too."""

    def __init__(
        self,
        compile: str | bool = "auto",
        channels_last: str | bool = "auto",
        min_compile_steps: int = 1000,
        compile_cache_dir: str | None = None,
    ) -> None:
        self.compile = checked_choice("callbacks.acceleration.compile", compile)
        self.channels_last = checked_choice("callbacks.acceleration.channels_last", channels_last)
        self.min_compile_steps = int(min_compile_steps)
        self.compile_cache_dir = compile_cache_dir
        self.compiled = False
        self.layout = "default"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        device_type = trainer.strategy.root_device.type
        if device_type == "cpu" and str(trainer.precision).startswith("bf16") and not bf16_is_native():
            log.warning(
                "trainer.precision=%s on a CPU without bfloat16 hardware (AVX512-BF16 or AMX): emulated, measured 7x "
                "slower than 32-true; use trainer.precision=32-true here",
                trainer.precision,
            )
        if self.layout == "default" and to_preferred_layout(pl_module, device_type, self.channels_last):
            self.layout = "channels_last"

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        device_type = trainer.strategy.root_device.type
        if self.compiled or not compile_pays(pl_module, device_type, 10**9, self.compile, self.min_compile_steps):
            return  # decided without counting the steps: counting builds the train loader once more
        datamodule = getattr(trainer, "datamodule", None)  # a property Lightning adds
        steps = int(trainer.estimated_stepping_batches) * int(getattr(datamodule, "minibatches_per_step", 1) or 1)
        if not compile_pays(pl_module, device_type, steps, self.compile, self.min_compile_steps):
            return
        use_compile_cache(self.compile_cache_dir)
        pl_module.compile()
        self.compiled = True
        log.info("model compiled with torch.compile (%d optimiser steps planned; the first steps compile)", steps)
