"""An Optuna (>= 4) sweeper for Hydra multirun.

It reads the official hydra-optuna-sweeper's config keys, asks Optuna for `n_jobs` trials at a time,
runs them through Hydra's launcher (in-process by default; one process per trial with the joblib
launcher when n_jobs > 1), and tells Optuna each result. The study lives in shared storage, so a rerun
continues it and several machines can join it; `n_trials` is the study's total.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from typing import Any, Sequence

from hydra.core.plugins import Plugins
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from genre_style.sweeps.search_space import parse_search_space, to_override_value
from genre_style.sweeps.storage import hand_over
from genre_style.urls import redact_url

log = logging.getLogger(__name__)


class OptunaSweeperImpl:
    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: str | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        params: dict | None,
        pruner: Any = None,
        search_space: Any = None,
        custom_search_space: Any = None,
        max_failure_rate: float = 1.0,
    ) -> None:
        if search_space is not None or custom_search_space is not None:
            raise NotImplementedError("`search_space` and `custom_search_space` are not supported; list the space in `params`")
        self.sampler_cfg = sampler
        self.direction = direction
        self.storage = storage
        self.study_name = study_name
        self.n_trials = int(n_trials)
        self.n_jobs = max(1, int(n_jobs))
        self.params = params
        self.pruner_cfg = pruner
        self.max_failure_rate = max_failure_rate

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        self.config = config
        # Hydra instantiates nested `_target_` nodes (sampler, pruner) before we see them; the pruner's
        # raw config is kept so trial processes can rebuild the same pruner from the study.
        raw_pruner = OmegaConf.select(config, "hydra.sweeper.pruner")
        self.pruner_raw = OmegaConf.to_container(raw_pruner, resolve=True) if raw_pruner is not None else None
        raw_sampler = OmegaConf.select(config, "hydra.sweeper.sampler")
        self.sampler_raw = OmegaConf.to_container(raw_sampler, resolve=True) if raw_sampler is not None else None
        self.hydra_context = hydra_context
        self.task_function = task_function
        HydraConfig.instance().set_config(config)  # lets ${hydra:runtime.cwd} resolve in paths.*
        launcher = OmegaConf.select(config, "hydra.runtime.choices", default={}).get("hydra/launcher", "basic")
        if self.n_jobs > 1 and launcher == "basic":  # Hydra's default launcher (one job after another)
            # One process per trial: Hydra's joblib launcher, sized to n_jobs (hydra#2946: a launcher chosen
            # inside a config group is ignored for multirun, so the sweeper picks it).
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.launcher = OmegaConf.create(
                    {
                        "_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
                        "n_jobs": self.n_jobs,
                        "backend": "loky",
                        "prefer": "processes",
                        "require": None,
                        "verbose": 0,
                        "timeout": None,
                        "pre_dispatch": "2*n_jobs",
                        "batch_size": "auto",
                        "temp_folder": None,
                        "max_nbytes": None,
                        "mmap_mode": "r",
                    }
                )
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    # --- helpers ---------------------------------------------------------------------------------

    def _directions(self) -> list[Any]:
        directions = (
            self.direction if isinstance(self.direction, (list, tuple)) or OmegaConf.is_list(self.direction) else [self.direction]
        )
        return [str(getattr(d, "name", d)).lower() for d in directions]

    def _study_name(self, searched: dict) -> str:
        if self.study_name:
            return str(self.study_name)
        import hashlib

        digest = hashlib.sha1(repr(sorted((k, repr(v)) for k, v in searched.items())).encode()).hexdigest()[:8]
        return f"{self.config.get('task_name', 'sweep')}-{digest}"

    def _output_root(self) -> str:
        try:
            return str(self.config.paths.output_root)
        except Exception:
            return os.path.join(os.getcwd(), "outputs")

    def _mlflow_settings(self) -> dict | None:
        logger_cfg = OmegaConf.select(self.config, "logger.mlflow")
        if logger_cfg is None:
            return None
        return {
            "tracking_uri": logger_cfg.get("tracking_uri"),
            "default_store_dir": str(logger_cfg.get("default_store_dir") or self._output_root()),
            "experiment_name": str(logger_cfg.get("experiment_name") or "genre-style"),
        }

    # --- the sweep -----------------------------------------------------------------------------

    def sweep(self, arguments: Sequence[str]) -> list:
        """Run the study to `n_trials`; a problem the user can fix (storage, tracking server) ends it in one line."""
        import sys

        from genre_style.errors import UserError, say_error

        try:
            return self._sweep(arguments)
        except UserError as exc:
            sys.exit(say_error(exc))

    def _sweep(self, arguments: Sequence[str]) -> list:

        from genre_style.sweeps.storage import open_storage, storage_url

        searched, fixed = parse_search_space(self.params, arguments)
        study_name = self._study_name(searched)
        storage = storage_url(self.storage, os.path.join(self._output_root(), "optuna"), study_name)
        directions = self._directions()
        study, joined = self._open_study(study_name, open_storage(storage), directions)
        study.set_user_attr("pruner", self.pruner_raw)
        log.info(
            "Optuna study %r in %s: %d trial(s) so far, %d wanted in all%s",
            study_name,
            redact_url(storage),
            len(study.trials),
            self.n_trials,
            " (joined other workers)" if joined else "",
        )

        self._fail_orphaned_trials(study)
        parent = self._open_parent(study, storage, joined)
        metric_name = str(self.config.get("optimized_metric") or OmegaConf.select(self.config, "monitor.metric") or "value")
        returns, job_idx, failures, launched = [], 0, 0, 0
        self.exhausted = False
        try:
            while True:
                done = len(study.get_trials(deepcopy=False))  # every trial, any state: n_trials is the total
                batch = min(self.n_jobs, self.n_trials - done)
                if batch <= 0 or self.exhausted:
                    break
                trials = [study.ask(fixed_distributions=searched) for _ in range(batch)]
                trials = [t for t in trials if not self._surplus(study, t)]
                if not trials:
                    break
                batch = len(trials)
                for trial in trials:  # who runs it: a rerun can tell a killed sweep's trials from live ones
                    trial.set_user_attr("sweeper", f"{socket.gethostname()}:{os.getpid()}")
                overrides = [self._overrides(trial, fixed, study_name, storage, parent) for trial in trials]
                results = self.launcher.launch(overrides, initial_job_idx=job_idx)
                job_idx += batch
                launched += batch
                for trial, result in zip(trials, results):
                    failures += self._tell(study, trial, result, len(directions))
                returns.append(results)
                if launched and failures / launched > self.max_failure_rate:
                    raise RuntimeError(f"{failures} of {launched} trials failed (max_failure_rate={self.max_failure_rate})")
        except BaseException:
            if parent:
                parent[0].set_terminated(parent[1], status="FAILED")
            raise
        self._finish(study, parent, metric_name, directions)
        return returns

    def _open_study(self, study_name: str, storage: Any, directions: list[Any]) -> tuple[Any, bool]:
        """Create the study, or join it; `joined` is True when other workers may be running it right now
        (it was created by another process a moment ago, or it has running trials); False for a new study
        or a resumed one nobody is running."""
        import optuna
        from optuna.trial import TrialState

        pruner = self._built(self.pruner_cfg, optuna.pruners.BasePruner) or optuna.pruners.NopPruner()
        try:
            existing = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
        except KeyError:  # no such study yet
            try:
                study = optuna.create_study(
                    study_name=study_name, storage=storage, sampler=self._sampler(0, False), pruner=pruner, directions=directions
                )
                return study, False
            except optuna.exceptions.DuplicatedStudyError:  # another worker created it first
                existing, joined = [], True
        else:  # being worked on now (running trials), or just created by another worker (no trials yet)
            joined = not existing or any(t.state == TrialState.RUNNING for t in existing)
        study = optuna.create_study(
            study_name=study_name,
            storage=storage,
            sampler=self._sampler(len(existing), joined),
            pruner=pruner,
            directions=directions,
            load_if_exists=True,
        )
        return study, joined

    def _surplus(self, study: Any, trial: Any) -> bool:
        """True (and the trial closed unrun) when other workers already asked for the study's last trials."""
        from optuna.trial import TrialState

        if trial.number < self.n_trials:
            return False
        trial.set_user_attr("not_run", f"the study already had n_trials={self.n_trials} trials")
        study.tell(trial, state=TrialState.FAIL)
        log.info("trial %d not run: other workers have taken the study's %d trials", trial.number, self.n_trials)
        return True

    @staticmethod
    def _fail_orphaned_trials(study: Any) -> None:
        """Mark FAIL the RUNNING trials of a sweep on this machine that was killed (its process is gone).

        Trials of live sweepers, here or on other machines sharing the study, are left alone.
        """
        from optuna.trial import TrialState

        host = socket.gethostname()
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = str(trial.user_attrs.get("sweeper", ""))
            owner_host, _, pid = owner.rpartition(":")
            if owner_host != host or not pid.isdigit() or _process_alive(int(pid)):
                continue
            study.tell(trial.number, state=TrialState.FAIL)
            log.warning("trial %d was interrupted (its sweep, pid %s, is gone): recorded as failed", trial.number, pid)

    def _sampler(self, existing: int, joined: bool) -> Any:
        """The configured sampler. On a resumed study a fixed seed is offset by the trials already run, so a
        rerun stays reproducible without replaying the first run's draws; a worker joining others also
        offsets it by its own identity, or every worker would draw the same parameters."""
        import zlib

        import optuna
        from hydra.utils import instantiate

        raw: dict[str, Any] = dict(self.sampler_raw or {})  # type: ignore[arg-type]
        if raw.get("seed") is not None and raw.get("_target_"):
            worker = zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 1_000_003 if joined else 0
            raw["seed"] = int(raw["seed"]) + existing + worker
            return instantiate(raw)
        return self._built(self.sampler_cfg, optuna.samplers.BaseSampler)

    @staticmethod
    def _built(node: Any, base: type) -> Any:
        """An Optuna object from a config node, or the node itself if Hydra already built it."""
        if node is None or isinstance(node, base):
            return node
        from hydra.utils import instantiate

        return instantiate(node)

    def _open_parent(self, study: Any, storage: str, joined: bool) -> tuple[Any, str] | None:
        settings = self._mlflow_settings()
        if settings is None:
            return None
        from genre_style.tracking.mlflow_store import prepare_store, resolve_tracking_uri
        from genre_style.tracking.sweep_parent import open_parent_run

        uri = resolve_tracking_uri(settings["tracking_uri"], settings["default_store_dir"])
        artifacts = prepare_store(uri, settings["default_store_dir"])
        # Creating the parent run also creates the store's schema once, before parallel trials race on it.
        client, run_id = open_parent_run(uri, settings["experiment_name"], artifacts, study, redact_url(storage), joined)
        log.info("MLflow parent run %s (%s)", run_id, redact_url(uri))
        return client, run_id

    def _overrides(self, trial: Any, fixed: dict, study_name: str, storage: str, parent: Any) -> list[str]:
        values = [f"{k}={v}" for k, v in fixed.items()]
        values += [f"{name}={to_override_value(value)}" for name, value in trial.params.items()]
        values += [
            f"sweep_context.study_name='{study_name}'",  # quoted: a name like `nan`, `true` or `12` stays a string
            f"sweep_context.storage='{hand_over(storage)}'",  # the password stays out of logs and run folders
            f"sweep_context.trial_number={trial.number}",
            f"sweep_context.torch_threads={max(1, (os.cpu_count() or 1) // self.n_jobs)}",
        ]
        if parent:
            values.append(f"sweep_context.parent_run_id='{parent[1]}'")
        return values

    def _safe_tell(self, study: Any, trial: Any, *args: Any, **kwargs: Any) -> None:
        """study.tell; grid and brute-force samplers call study.stop() when the space is used up, which
        Optuna only allows inside optimize(): the result is stored anyway, and the sweep ends."""
        try:
            study.tell(trial, *args, **kwargs)
        except RuntimeError as exc:
            if "Study.stop" not in str(exc):
                raise
            log.info("the sampler has covered the whole search space: the sweep ends")
            self.exhausted = True

    def _tell(self, study: Any, trial: Any, result: Any, n_objectives: int) -> int:
        """Record a trial's outcome; return 1 if it failed."""
        import optuna
        from optuna.trial import TrialState

        try:
            value = result.return_value  # re-raises the job's exception
        except optuna.TrialPruned:
            self._safe_tell(study, trial, state=TrialState.PRUNED)
            log.info("trial %d pruned", trial.number)
            return 0
        except Exception as exc:
            self._safe_tell(study, trial, state=TrialState.FAIL)
            log.warning("trial %d failed (%s: %s); the sweep goes on", trial.number, type(exc).__name__, exc)
            return 1
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        try:
            values = [float(v) for v in values]
        except (TypeError, ValueError):
            values = [math.nan]
        if len(values) != n_objectives or not all(math.isfinite(v) for v in values):
            self._safe_tell(study, trial, state=TrialState.FAIL)
            log.warning("trial %d returned %r, not %d finite number(s): recorded as failed", trial.number, value, n_objectives)
            return 1
        self._safe_tell(study, trial, values if n_objectives > 1 else values[0])
        return 0

    def _finish(self, study: Any, parent: Any, metric_name: str, directions: list[str]) -> None:
        import optuna

        complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
        if complete and len(directions) == 1:
            log.info(
                "best trial %d: %s = %.4f with %s", study.best_trial.number, metric_name, study.best_value, study.best_params
            )
        if parent:
            from genre_style.tracking.sweep_parent import log_study_summary

            client, run_id = parent
            if len(directions) == 1:
                log_study_summary(client, run_id, study, metric_name, self.config.get("register_as"))
            client.set_terminated(run_id, status="FINISHED")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
