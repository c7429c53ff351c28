"""Which settings decide what is learned, and which do not: one list of each, asked by the MLflow params
(tracking/run_record.py), the report's grouping of repeated runs (report.py) and what a resume may change
(run_folder.py). A setting added to the configs that is neither lands in all three as "changes what is learned"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

# Where things go and how they are shown: never part of a run's configuration.
BOOKKEEPING = (
    "paths.",
    "logger.",
    "sweep_context.",
    "hydra",
    "task_name",
    "plugins",  # modules imported for what they register: what they change shows in the settings that name it
    "resume",
    "run_name",
    "tags.",
    "math.",  # the math libraries' settings of the machine (reproducibility.py): params of their own, not the config's
    "callbacks.model_checkpoint.dirpath",
    "callbacks.last_checkpoint.",
    "callbacks.progress_bar.",
    "callbacks.acceleration.compile_cache_dir",  # where Inductor keeps compiled kernels (a machine path)
    "callbacks.random_state.",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "data.progress",
    "data.store.workers",
    "data.store.cache_dir",
    "model.encoder.cache",  # `cache` and `cache_dir`: where a pretrained backbone's weights and outputs are kept
)

# The training budget, the hardware and what is measured afterwards: a resume may change these.
BUDGET = (
    "trainer.max_epochs",
    "trainer.min_epochs",
    "trainer.max_time",
    "trainer.max_steps",
    "callbacks.early_stopping.patience",
    "trainer.accelerator",
    "trainer.devices",
    "evaluation.",
    "optimized_metric",
    "data.loader.eval_batch_size",
)

# The seed: runs that differ only in it (and bookkeeping) repeat one configuration.
SEEDS = ("seed", "data.seed")

# The top-level knobs users type most; the settings they feed say so themselves (`model.gamma: ${gamma}`). The config
# checks refuse one the chosen model ignores; the MLflow params leave such an alias out.
ALIASES = ("gamma", "dropout", "lr", "batch_size")


def uses_alias(cfg: DictConfig, alias: str) -> bool:
    """Whether any setting other than the alias itself takes its value from `${alias}`."""
    from omegaconf import OmegaConf

    if alias == "gamma" and OmegaConf.select(cfg, "model.classifier") is False:
        return False  # a variational model without its classifier has no gamma mix
    reference = "${" + alias + "}"
    tree = OmegaConf.to_container(cfg, resolve=False)

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return isinstance(node, str) and reference in node

    return any(walk(v) for k, v in tree.items() if k != alias)  # type: ignore[union-attr]
