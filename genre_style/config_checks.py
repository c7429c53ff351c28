"""Check a composed config before anything heavy is imported, so mistakes fail in a second with one line."""

from __future__ import annotations

from numbers import Number
from typing import Any

from omegaconf import DictConfig, OmegaConf

from genre_style.errors import UserError


def _number(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, Number)):
        raise UserError(f"{key} must be a number, got {value!r}", f"e.g. {key}=0.5")
    return value


def _check_range(cfg: DictConfig, key: str, low: float, high: float, high_inclusive: bool, hint: str) -> None:
    value = _number(cfg, key)
    if value is None:
        return
    ok = low <= value <= high if high_inclusive else low <= value < high
    if not ok:
        bracket = "]" if high_inclusive else ")"
        raise UserError(f"{key}={value} is outside [{low}, {high}{bracket}", hint)


def _check_positive_int(cfg: DictConfig, key: str) -> None:
    value = OmegaConf.select(cfg, key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise UserError(f"{key} must be a positive integer, got {value!r}", f"e.g. {key}=64")


def _check_sizes(cfg: DictConfig, key: str, allow_empty: bool) -> None:
    sizes = OmegaConf.select(cfg, key)
    if sizes is None:
        return
    if OmegaConf.is_list(sizes):
        sizes = list(sizes)
    if not isinstance(sizes, list) or (not sizes and not allow_empty) or any(
        isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes
    ):
        raise UserError(f"{key} must be a list of positive integers, got {sizes!r}", f"e.g. {key}=[256,128]")


def validate_config(cfg: DictConfig) -> None:
    """Raise a UserError naming the first bad setting and how to fix it."""
    _check_range(cfg, "gamma", 0.0, 1.0, True, "gamma weighs reconstruction against cross-entropy: use a value in [0, 1], e.g. gamma=0.9")
    _check_range(cfg, "model.gamma", 0.0, 1.0, True, "use a value in [0, 1], e.g. gamma=0.9")
    _check_range(cfg, "dropout", 0.0, 1.0, False, "dropout is the share of units dropped: use [0, 1), e.g. dropout=0.1")
    _check_range(cfg, "model.dropout", 0.0, 1.0, False, "use a value in [0, 1), e.g. dropout=0.1")
    lr = _number(cfg, "lr")
    if lr is not None and lr <= 0:
        raise UserError(f"lr={lr} must be positive", "e.g. lr=1e-3")
    for key in ("batch_size", "model.embedding_dim", "data.sample_rate", "data.segment_samples", "data.hop_samples",
                "data.clips_per_track", "data.pool", "data.batch_size", "data.minibatches_per_step", "trainer.max_epochs"):
        _check_positive_int(cfg, key)
    interval = _number(cfg, "callbacks.last_checkpoint.min_interval_s")
    if interval is not None and interval < 0:
        raise UserError(f"callbacks.last_checkpoint.min_interval_s={interval} must be >= 0",
                        "seconds between resume checkpoints, e.g. 1.0; 0 saves after every epoch")
    _check_sizes(cfg, "model.encoder.channels", allow_empty=False)
    for key in ("model.encoder.hidden_sizes", "model.classifier_sizes", "model.decoder_sizes"):
        _check_sizes(cfg, key, allow_empty=True)
    _check_encoder_fits_features(cfg)
    _check_augment(cfg)
    _check_variational(cfg)
    pool, segment = OmegaConf.select(cfg, "data.pool"), OmegaConf.select(cfg, "data.segment_samples")
    raw = OmegaConf.select(cfg, "data.features") in (None, "raw_pool")
    if raw and pool is not None and segment is not None and pool > segment:
        raise UserError(f"data.pool={pool} is longer than a clip (data.segment_samples={segment})",
                        "pool by at most the clip length, e.g. data.pool=40 for 20000-sample clips")
    split = OmegaConf.select(cfg, "data.split")
    from genre_style.data.splits import SPLIT_MODES  # numpy only: stays light

    if split is not None and split not in SPLIT_MODES:
        raise UserError(f"unknown data.split={split!r}",
                        "use data.split=track (honest), segment (the paper's) or fault_filtered (GTZAN's standard)")
    _check_distributed(cfg)
    _check_manual_optimisation(cfg)
    check_output_root(cfg)
    _check_tracking_server(cfg)
    if OmegaConf.select(cfg, "data") is not None and OmegaConf.select(cfg, "data.synthetic") is None:
        from genre_style.data.gtzan import resolve_genres

        # Raises a UserError naming the path and how to get GTZAN, or the unknown genre and those found.
        genres: Any = OmegaConf.to_object(cfg.data.genres) if OmegaConf.is_list(cfg.data.genres) else cfg.data.genres
        resolve_genres(cfg.data.root, genres)


# Encoders that need a time axis, and the front-ends that give them one.
ENCODER_INPUTS = {"LogMelCNN": ("logmel", "mfcc"), "SampleCNN": ("waveform",)}


def _check_encoder_fits_features(cfg: DictConfig) -> None:
    target = str(OmegaConf.select(cfg, "model.encoder._target_") or "").rsplit(".", 1)[-1]
    features = OmegaConf.select(cfg, "data.features") or "raw_pool"
    wanted = ENCODER_INPUTS.get(target)
    if wanted and features not in wanted and "logreg" not in str(OmegaConf.select(cfg, "model._target_")):
        raise UserError(f"encoder {target} cannot read features={features} (it needs {' or '.join(wanted)})",
                        f"add features={wanted[0]}, or use encoder=mlp for features={features}")


def _check_augment(cfg: DictConfig) -> None:
    augment = OmegaConf.select(cfg, "model.augment")
    if not augment:
        return
    for key in ("freq_masks", "time_masks", "gain_db", "mixup_alpha"):
        value = _number(cfg, f"model.augment.{key}")
        if value is not None and value < 0:
            raise UserError(f"model.augment.{key}={value} must be >= 0", f"e.g. model.augment.{key}=0 to switch it off")
    for key in ("freq_mask_width", "time_mask_width"):
        _check_range(cfg, f"model.augment.{key}", 0.0, 1.0, True, f"the widest mask as a share of the axis, e.g. model.augment.{key}=0.1")


def _check_variational(cfg: DictConfig) -> None:
    for key in ("beta", "mi_weight", "tc_weight", "dimwise_kl_weight", "kl_warmup_epochs"):
        value = _number(cfg, f"model.{key}")
        if value is not None and value < 0:
            raise UserError(f"model.{key}={value} must be >= 0", f"a weight of the KL terms, e.g. model.{key}=1.0")
    if OmegaConf.select(cfg, "model.classifier") is True:
        genres = OmegaConf.select(cfg, "data.genres")
        if OmegaConf.is_list(genres) and len(genres) < 2:
            raise UserError(f"model.classifier=true needs genre labels to learn from, but data.genres={list(genres)} has one",
                            "give at least two genres (data.genres=[classical,jazz]), or model.classifier=false")
        if OmegaConf.select(cfg, "model.gamma") == 1.0:
            raise UserError("model.classifier=true with gamma=1 gives the classifier no weight in the loss: it learns nothing",
                            "lower gamma (e.g. gamma=0.9), or model.classifier=false")


def _check_manual_optimisation(cfg: DictConfig) -> None:
    """The models step their optimiser themselves (several minibatches per Lightning batch), so the Trainer's
    own clipping and accumulation don't apply; say what does instead of Lightning's traceback."""
    if OmegaConf.select(cfg, "trainer.gradient_clip_val"):
        raise UserError("trainer.gradient_clip_val is not used by these models (they step their optimiser themselves)",
                        f"use +model.gradient_clip_val={OmegaConf.select(cfg, 'trainer.gradient_clip_val')} (clips by norm)")
    accumulate = OmegaConf.select(cfg, "trainer.accumulate_grad_batches")
    if accumulate not in (None, 1):
        raise UserError(f"trainer.accumulate_grad_batches={accumulate} is not supported by these models",
                        "raise batch_size instead (the data are in memory: a larger batch costs no extra loading)")


def _check_distributed(cfg: DictConfig) -> None:
    """DDP relaunches the command once per process, which inside a multirun would relaunch the whole sweep."""
    strategy = str(OmegaConf.select(cfg, "trainer.strategy") or "")
    if not strategy.startswith("ddp") or not in_multirun():
        return
    raise UserError(f"trainer.strategy={strategy} cannot run inside a multirun sweep (-m)",
                    "sweeps run trials side by side instead: raise hydra.sweeper.n_jobs or start more sweep workers "
                    "on the same study; use trainer=ddp for single runs", whole_sweep=True)


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:  # no Hydra job (tests, notebooks)
        return False


def _check_tracking_server(cfg: DictConfig) -> None:
    """A tracking server that does not answer stops the job here, in a second, before heavy imports."""
    from genre_style.tracking.mlflow_logger import check_tracking_server, resolve_tracking_uri

    if OmegaConf.select(cfg, "logger.mlflow") is None:
        return
    uri = resolve_tracking_uri(OmegaConf.select(cfg, "logger.mlflow.tracking_uri"), ".")
    if uri.startswith(("http://", "https://")):
        check_tracking_server(uri)


def check_output_root(cfg: DictConfig) -> None:
    """Fail before any work if runs, caches and the local store cannot be written."""
    import shutil
    import tempfile
    from pathlib import Path

    root = OmegaConf.select(cfg, "paths.output_root")
    if root is None:
        return
    root = Path(root)
    fix = "point GENRE_STYLE_OUTPUTS (or paths.output_root=...) at a writable folder with free space"
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to the output folder {root} ({exc.strerror or exc})", fix) from None
    min_free_mb = OmegaConf.select(cfg, "paths.min_free_mb") or 0
    free_mb = shutil.disk_usage(root).free / 2**20
    if free_mb < min_free_mb:
        raise UserError(f"only {free_mb:.0f} MB free under {root}; a run needs at least {min_free_mb} MB "
                        "(paths.min_free_mb)", fix)
