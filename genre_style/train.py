"""`python -m genre_style.train`: build data, model and trainer from the Hydra config, fit, test, evaluate, log.

Heavy imports (torch, Lightning, MLflow) happen inside `train`, after the config has been checked,
so `--help` and config mistakes answer at once.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

from genre_style.config_checks import validate_config
from genre_style.errors import UserError, say_error
from genre_style.hydra_job import command_line, in_multirun
from genre_style.preemption import Preempted, resume_advice, signals_stop_the_run

if TYPE_CHECKING:
    from lightning.pytorch import Trainer

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> float:
    """Train one model and return the number a sweep optimises (`objective_value`). If anything fails after the
    MLflow run was created, the run is marked FAILED (KILLED after SIGTERM or SIGINT)."""
    validate_config(cfg)
    import lightning.pytorch as pl
    from hydra.utils import instantiate

    from genre_style.callbacks import instantiate_callbacks
    from genre_style.callbacks.metric_history import MetricHistory
    from genre_style.console import hide_lightning_messages, metrics_table, quiet_console
    from genre_style.evaluation.evaluate import evaluate_best
    from genre_style.model_files import numpy_arrays_allowed
    from genre_style.run_folder import RunFolder, find_resume
    from genre_style.sweeps.trial_context import objective_value, trial_callbacks
    from genre_style.tracking.logger import start_run

    quiet_console()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    resumed = find_resume(cfg)  # refuses a resume that would change what is learned
    if resumed is not None:
        cfg.paths.output_dir = str(resumed.path)  # a resumed run goes on in its own folder, checkpoints and all
    folder = RunFolder(cfg.paths.output_dir)
    tracker = start_run(cfg, folder, resumed)  # first: a store that does not answer fails before preprocessing
    try:
        with signals_stop_the_run():
            datamodule = instantiate(cfg.data)
            datamodule.prepare_data()
            datamodule.setup("fit")
            model = instantiate(
                cfg.model,
                input_shape=datamodule.input_shape,
                input_kind=datamodule.input_kind,
                num_classes=datamodule.num_classes,
                class_names=datamodule.class_names,
            )
            from genre_style.models.pretrained.cache import serve_cached_features, stop_serving

            history = MetricHistory()
            callbacks = [*instantiate_callbacks(cfg), history, *trial_callbacks(cfg)]
            trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=[tracker] if tracker else False)
            # a frozen backbone: the heads train on its outputs, filled on the trainer's device
            serve_cached_features(model, datamodule, datamodule.cache_dir, trainer.strategy.root_device)
            if trainer.is_global_zero:
                folder.record_inputs(cfg, datamodule)
                if tracker is not None:
                    tracker.log_datasets(datamodule, str(cfg.data.source.root))
            with numpy_arrays_allowed():  # checkpoints read as weights and plain data only (genre_style/model_files.py)
                trainer.fit(model, datamodule=datamodule, ckpt_path=resumed and resumed.last_checkpoint, weights_only=True)
                best = best_checkpoint(trainer)
                if best:  # Lightning names the checkpoint it tests from; the file moves to artifacts/checkpoints/ below
                    hide_lightning_messages(checkpoint=best)
                trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True, verbose=False)
            settings = dict(cfg.evaluation)
            downstream: Any = OmegaConf.to_container(settings.pop("downstream", None) or OmegaConf.create([]))
            brackets: Any = settings.get("pretrained_brackets")  # beside the model (pretrained_beside.py) and downstream
            metrics = evaluate_best(trainer, model, datamodule, history.history, folder.artifacts, settings)
            stop_serving(model, datamodule)
            if metrics is None:  # a DDP process other than rank zero: its part is done
                return float("nan")
            folder.finish(best)
            checkpoint = folder.artifacts / "checkpoints" / "best.ckpt"
            if downstream and checkpoint.exists():  # frozen embeddings on other folders, from the checkpoint users get
                from genre_style.evaluation.brackets import downstream_after_training

                metrics.update(
                    downstream_after_training(
                        checkpoint,
                        downstream,
                        folder.artifacts / "downstream",
                        cfg.paths.cache_dir,
                        cfg.seed,
                        brackets if isinstance(brackets, str) else list(brackets or []),  # a str: "musicnn", "none"
                    )
                )
            if tracker is not None:
                tracker.finish(cfg, metrics, history.history, folder.artifacts)
    except BaseException as exc:
        folder.interrupted(exc)
        if tracker is not None:
            tracker.close("KILLED" if isinstance(exc, Preempted) else "failed")
        raise
    log.info("%s", metrics_table(metrics))
    log.info("run folder: %s", folder.path)
    if checkpoint.exists():
        log.info("best checkpoint (for embed, predict, export): %s", checkpoint)
    if tracker is not None:
        tracker.report(folder.artifacts)
    best_score = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    return objective_value(cfg, metrics, {k: float(v) for k, v in trainer.callback_metrics.items()}, best_score)


def best_checkpoint(trainer: Trainer) -> str:
    """The monitored best checkpoint; for a fit that took no gradient step (`model=logreg`: scikit-learn fits it),
    which Lightning's ModelCheckpoint never saves, the fitted state itself, so `predict` and `embed` can load it."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    callback = trainer.checkpoint_callback
    if not isinstance(callback, ModelCheckpoint):
        return ""
    if callback.best_model_path or trainer.global_step > 0 or trainer.interrupted or callback.dirpath is None:
        return callback.best_model_path
    path = str(Path(callback.dirpath) / f"{callback.filename or 'best'}{callback.FILE_EXTENSION}")
    trainer.save_checkpoint(path, weights_only=callback.save_weights_only)
    return path


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def hydra_main(cfg: DictConfig) -> float:
    try:
        return train(cfg)
    except Preempted as stop:
        print(f"genre-style: {resume_advice(stop, command_line(), sweep=in_multirun())}", file=sys.stderr)
        sys.exit(stop.exit_code)
    except Exception as exc:
        error = exc if isinstance(exc, UserError) else exc.__cause__  # Hydra's instantiate wraps what targets raise
        if not isinstance(error, UserError):
            raise
        if in_multirun() and not error.whole_sweep:
            say_error(error)
            raise error from None  # a sweep records this trial as failed and goes on
        sys.exit(say_error(error))


def main() -> None:
    """`python -m genre_style.train`: an old flat data key on the command line is one line naming its new place,
    before Hydra composes (whose own error would be a paragraph about struct mode)."""
    from genre_style.data.settings import check_typed_overrides

    try:
        check_typed_overrides(sys.argv[1:])
    except UserError as error:
        sys.exit(say_error(error))
    hydra_main()


if __name__ == "__main__":
    main()
