"""Hydra only loads sweepers from the `hydra_plugins` namespace: this is a thin shim over genre_style.sweeps.

It takes the official hydra-optuna-sweeper's module path and config name (`hydra/sweeper: optuna`),
so configs written for that plugin run unchanged, but on Optuna >= 4. Don't install both.
"""

from dataclasses import dataclass, field
from typing import Any, Sequence

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    def __init__(self, **kwargs: Any) -> None:
        from genre_style.sweeps.optuna_sweeper import OptunaSweeperImpl  # heavy: only when a sweep runs

        self.impl = OptunaSweeperImpl(**kwargs)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: Sequence[str]) -> Any:
        return self.impl.sweep(arguments)


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    sampler: Any = None
    direction: Any = "minimize"
    storage: Any | None = None
    study_name: str | None = None
    n_trials: int = 20
    n_jobs: int = 1
    max_failure_rate: float = 1.0
    pruner: Any = None
    search_space: Any | None = None
    custom_search_space: str | None = None
    params: Any | None = None


SAMPLERS = {
    "tpe": {"_target_": "optuna.samplers.TPESampler", "seed": None},
    "random": {"_target_": "optuna.samplers.RandomSampler", "seed": None},
    "cmaes": {"_target_": "optuna.samplers.CmaEsSampler", "seed": None},
    "gp": {"_target_": "optuna.samplers.GPSampler", "seed": None},
    "nsgaii": {"_target_": "optuna.samplers.NSGAIISampler", "seed": None},
    "grid": {"_target_": "optuna.samplers.GridSampler", "search_space": None, "seed": None},
}
PRUNERS = {
    "median": {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 2, "n_warmup_steps": 3},
    "successive_halving": {"_target_": "optuna.pruners.SuccessiveHalvingPruner", "min_resource": 3, "reduction_factor": 3},
}

store = ConfigStore.instance()
store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="genre_style")
for _name, _node in SAMPLERS.items():
    store.store(group="hydra/sweeper/sampler", name=_name, node=_node, provider="genre_style")
for _name, _node in PRUNERS.items():
    store.store(group="hydra/sweeper/pruner", name=_name, node=_node, provider="genre_style")
