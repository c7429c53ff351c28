"""Check a composed config before anything heavy is imported, so mistakes fail in a second with one line."""

from __future__ import annotations

import sys
from numbers import Number
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from genre_style.errors import UserError
from genre_style.urls import redact_url


def _number(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, Number)):
        name = _name(cfg, key)
        raise UserError(f"{name} must be a number, got {value!r}", f"e.g. {name}=0.5")
    return value


def _check_range(cfg: DictConfig, key: str, low: float, high: float, high_inclusive: bool, hint: str) -> None:
    value = _number(cfg, key)
    if value is None:
        return
    ok = low <= value <= high if high_inclusive else low <= value < high
    if not ok:
        bracket = "]" if high_inclusive else ")"
        raise UserError(f"{_name(cfg, key)}={value} is outside [{low}, {high}{bracket}", hint)


def _check_positive_int(cfg: DictConfig, key: str) -> None:
    value = OmegaConf.select(cfg, key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        name = _name(cfg, key)
        raise UserError(f"{name} must be a positive integer, got {value!r}", f"e.g. {name}=64")


def _check_sizes(cfg: DictConfig, key: str, allow_empty: bool) -> None:
    sizes = OmegaConf.select(cfg, key)
    if sizes is None:
        return
    if OmegaConf.is_list(sizes):
        sizes = list(sizes)
    if (
        not isinstance(sizes, list)
        or (not sizes and not allow_empty)
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)
    ):
        raise UserError(f"{key} must be a list of positive integers, got {sizes!r}", f"e.g. {key}=[256,128]")


# The top-level knobs users type most; the settings they feed say so themselves (`model.gamma: ${gamma}`).
ALIASES = ("gamma", "dropout", "lr", "batch_size")


def validate_config(cfg: DictConfig, overrides: list[str] | None = None) -> None:
    """The one place settings are checked: raise a UserError naming the first bad setting and how to fix it.

    Values are checked where they land (`model.gamma`, not the `gamma` alias that feeds it), each once;
    `overrides` (the command line's, read from Hydra when not given) lets an alias the chosen model ignores
    be refused instead of silently dropped.
    """
    _check_aliases_used(cfg, command_line() if overrides is None else overrides)
    _check_range(
        cfg,
        "model.gamma",
        0.0,
        1.0,
        True,
        "gamma weighs reconstruction against cross-entropy: use a value in [0, 1], e.g. gamma=0.9",
    )
    _check_range(cfg, "model.dropout", 0.0, 1.0, False, "dropout is the share of units dropped: use [0, 1), e.g. dropout=0.1")
    _check_range(
        cfg, "model.encoder.dropout", 0.0, 1.0, False, "dropout is the share of units dropped: use [0, 1), e.g. dropout=0.1"
    )
    _check_range(
        cfg, "callbacks.weight_average.decay", 0.0, 1.0, False, "the weight average's decay per step: use [0, 1), e.g. 0.995"
    )
    lr = _number(cfg, "model.optimizer.lr")
    if lr is not None and lr <= 0:
        raise UserError(f"{_name(cfg, 'model.optimizer.lr')}={lr} must be positive", "e.g. lr=1e-3")
    for key in (
        "model.embedding_dim",
        "data.sample_rate",
        "data.segment_samples",
        "data.hop_samples",
        "data.clips_per_track",
        "data.eval_clips_per_track",
        "data.pool",
        "data.batch_size",
        "data.minibatches_per_step",
        "trainer.max_epochs",
    ):
        _check_positive_int(cfg, key)
    _check_sizes(cfg, "model.encoder.channels", allow_empty=False)
    for key in ("model.encoder.hidden_sizes", "model.classifier_sizes", "model.decoder_sizes"):
        _check_sizes(cfg, key, allow_empty=True)
    clips, scored = OmegaConf.select(cfg, "data.clips_per_track"), OmegaConf.select(cfg, "data.eval_clips_per_track")
    if clips is not None and scored is not None and scored > clips:
        raise UserError(
            f"data.eval_clips_per_track={scored} is more than data.clips_per_track={clips}",
            "val/test score at most the clips a track has: e.g. data.clips_per_track=33 data.eval_clips_per_track=20",
        )
    _check_encoder_fits_features(cfg)
    _check_augment(cfg)
    _check_variational(cfg)
    pool, segment = OmegaConf.select(cfg, "data.pool"), OmegaConf.select(cfg, "data.segment_samples")
    raw = OmegaConf.select(cfg, "data.features") in (None, "raw_pool")
    if raw and pool is not None and segment is not None and pool > segment:
        raise UserError(
            f"data.pool={pool} is longer than a clip (data.segment_samples={segment})",
            "pool by at most the clip length, e.g. data.pool=40 for 20000-sample clips",
        )
    split = OmegaConf.select(cfg, "data.split")
    from genre_style.data.splits import SPLIT_MODES  # numpy only: stays light

    if split is not None and split not in SPLIT_MODES:
        raise UserError(
            f"unknown data.split={split!r}",
            "use data.split=track (honest), segment (the paper's) or fault_filtered (GTZAN's standard)",
        )
    _check_distributed(cfg)
    _check_manual_optimisation(cfg)
    _check_registration(cfg)
    check_environment(cfg)


def check_environment(cfg: DictConfig) -> None:
    """What the machine must offer before heavy imports: a writable output folder, a tracking server that
    answers, the data root and genres."""
    check_output_root(cfg)
    _check_tracking_server(cfg)
    if OmegaConf.select(cfg, "data") is not None and OmegaConf.select(cfg, "data.synthetic") is None:
        from genre_style.data.gtzan import resolve_genres

        # Raises a UserError naming the path and how to get GTZAN, or the unknown genre and those found.
        genres: Any = OmegaConf.to_object(cfg.data.genres) if OmegaConf.is_list(cfg.data.genres) else cfg.data.genres
        resolve_genres(cfg.data.root, genres)


def _name(cfg: DictConfig, key: str) -> str:
    """The name the user knows a setting by: the alias that feeds `key` where there is one."""
    node, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, node) if node else cfg
    raw = OmegaConf.to_container(parent, resolve=False).get(leaf) if OmegaConf.is_dict(parent) else None  # type: ignore[union-attr]
    return next((alias for alias in ALIASES if raw == "${" + alias + "}"), key)


def uses_alias(cfg: DictConfig, alias: str) -> bool:
    """Whether any setting other than the alias itself takes its value from `${alias}`."""
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


def _check_aliases_used(cfg: DictConfig, overrides: list[str]) -> None:
    typed = {o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o}
    for alias in ALIASES:
        if alias in typed and not uses_alias(cfg, alias):
            model = str(OmegaConf.select(cfg, "model._target_") or "?").rsplit(".", 1)[-1]
            raise UserError(
                f"{alias}={OmegaConf.select(cfg, alias)} is not used by {model}: it would be ignored",
                f"drop {alias}=..., or choose a model that has it (gamma: model=dsae, or model=vae model.classifier=true)",
            )


def command_line() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # no Hydra job (tests, notebooks): nothing was typed
        return []


# Encoders that need a time axis, and the front-ends that give them one.
ENCODER_INPUTS = {"LogMelCNN": ("logmel", "mfcc"), "SampleCNN": ("waveform",)}


def _check_encoder_fits_features(cfg: DictConfig) -> None:
    target = str(OmegaConf.select(cfg, "model.encoder._target_") or "").rsplit(".", 1)[-1]
    features = OmegaConf.select(cfg, "data.features") or "raw_pool"
    wanted = ENCODER_INPUTS.get(target)
    if wanted and features not in wanted and "logreg" not in str(OmegaConf.select(cfg, "model._target_")):
        raise UserError(
            f"encoder {target} cannot read features={features} (it needs {' or '.join(wanted)})",
            f"add features={wanted[0]}, or use encoder=mlp for features={features}",
        )


def _check_augment(cfg: DictConfig) -> None:
    augment = OmegaConf.select(cfg, "model.augment")
    if not augment:
        return
    for key in ("freq_masks", "time_masks", "gain_db", "mixup_alpha"):
        value = _number(cfg, f"model.augment.{key}")
        if value is not None and value < 0:
            raise UserError(f"model.augment.{key}={value} must be >= 0", f"e.g. model.augment.{key}=0 to switch it off")
    for key in ("freq_mask_width", "time_mask_width"):
        _check_range(
            cfg, f"model.augment.{key}", 0.0, 1.0, True, f"the widest mask as a share of the axis, e.g. model.augment.{key}=0.1"
        )


def _check_variational(cfg: DictConfig) -> None:
    for key in ("beta", "mi_weight", "tc_weight", "dimwise_kl_weight", "kl_warmup_epochs"):
        value = _number(cfg, f"model.{key}")
        if value is not None and value < 0:
            raise UserError(f"model.{key}={value} must be >= 0", f"a weight of the KL terms, e.g. model.{key}=1.0")
    if OmegaConf.select(cfg, "model.classifier") is True:
        genres = OmegaConf.select(cfg, "data.genres")
        if OmegaConf.is_list(genres) and len(genres) < 2:
            raise UserError(
                f"model.classifier=true needs genre labels to learn from, but data.genres={list(genres)} has one",
                "give at least two genres (data.genres=[classical,jazz]), or model.classifier=false",
            )
        if OmegaConf.select(cfg, "model.gamma") == 1.0:
            raise UserError(
                "model.classifier=true with gamma=1 gives the classifier no weight in the loss: it learns nothing",
                "lower gamma (e.g. gamma=0.9), or model.classifier=false",
            )


def _check_registration(cfg: DictConfig) -> None:
    """`register_as` needs a model logged to MLflow: say so instead of registering nothing."""
    name = OmegaConf.select(cfg, "register_as")
    if name and (OmegaConf.select(cfg, "logger.mlflow") is None or OmegaConf.select(cfg, "logger.mlflow.log_model") is False):
        raise UserError(
            f"register_as={name} needs the run's model in MLflow, but this run logs none",
            "drop logger=none and logger.mlflow.log_model=false, or drop register_as",
        )


def _check_manual_optimisation(cfg: DictConfig) -> None:
    """The models step their optimiser themselves (several minibatches per Lightning batch), so the Trainer's
    own clipping and accumulation don't apply; say what does instead of Lightning's traceback."""
    if OmegaConf.select(cfg, "trainer.gradient_clip_val"):
        raise UserError(
            "trainer.gradient_clip_val is not used by these models (they step their optimiser themselves)",
            f"use +model.gradient_clip_val={OmegaConf.select(cfg, 'trainer.gradient_clip_val')} (clips by norm)",
        )
    accumulate = OmegaConf.select(cfg, "trainer.accumulate_grad_batches")
    if accumulate not in (None, 1):
        raise UserError(
            f"trainer.accumulate_grad_batches={accumulate} is not supported by these models",
            "raise batch_size instead (the data are in memory: a larger batch costs no extra loading)",
        )


def _check_distributed(cfg: DictConfig) -> None:
    """DDP relaunches the command once per process, which inside a multirun would relaunch the whole sweep."""
    strategy = str(OmegaConf.select(cfg, "trainer.strategy") or "")
    if not strategy.startswith("ddp") or not in_multirun():
        return
    raise UserError(
        f"trainer.strategy={strategy} cannot run inside a multirun sweep (-m)",
        "sweeps run trials side by side instead: raise hydra.sweeper.n_jobs or start more sweep workers "
        "on the same study; use trainer=ddp for single runs",
        whole_sweep=True,
    )


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:  # no Hydra job (tests, notebooks)
        return False


def _check_tracking_server(cfg: DictConfig) -> None:
    """A tracking server that does not answer stops the job here, in a second, before heavy imports."""
    from genre_style.tracking.store import check_tracking_server, resolve_tracking_uri

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
        raise UserError(
            f"only {free_mb:.0f} MB free under {root}; a run needs at least {min_free_mb} MB (paths.min_free_mb)", fix
        )


def flatten_config(cfg: Any) -> dict[str, Any]:
    """The resolved config as `a.b.c -> value`, for MLflow params (passwords in URLs redacted)."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = redact_url(node) if isinstance(node, str) else node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


class OutputFolderCheck(Callback):
    """A Hydra callback: an output folder that can't be written stops the command with one line, before Hydra's
    own mkdir of the run folder fails with a traceback."""

    def _check(self, config: DictConfig) -> None:
        try:
            check_output_root(config)
        except UserError as exc:
            print(f"genre-style: error: {exc}", file=sys.stderr)
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)
