"""Check a composed config's values before anything heavy is imported, so mistakes fail in a second with one line.

The value rules live here; what the machine must offer (output folder, tracking server, data root) is in
machine_checks.py, and what Hydra says about the job (its overrides, multirun) in hydra_job.py.
"""

from __future__ import annotations

from numbers import Number
from typing import Any

from omegaconf import DictConfig, OmegaConf

from genre_style.errors import UserError
from genre_style.hydra_job import command_line, in_multirun
from genre_style.machine_checks import check_environment
from genre_style.setting_roles import ALIASES, uses_alias


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


def validate_config(cfg: DictConfig, overrides: list[str] | None = None) -> None:
    """The one place settings are checked: raise a UserError naming the first bad setting and how to fix it.

    Values are checked where they land (`model.gamma`, not the `gamma` alias that feeds it), each once;
    `overrides` (the command line's, read from Hydra when not given) lets an alias the chosen model ignores
    be refused instead of silently dropped.
    """
    load_plugins(cfg)  # first: the registries the checks below ask may be extended by them
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
        "data.clips.sample_rate",
        "data.clips.segment_samples",
        "data.clips.hop_samples",
        "data.clips.clips_per_track",
        "data.split.eval_clips_per_track",
        "data.clips.pool",
        "data.loader.batch_size",
        "data.loader.minibatches_per_step",
        "trainer.max_epochs",
    ):
        _check_positive_int(cfg, key)
    _check_sizes(cfg, "model.encoder.channels", allow_empty=False)
    for key in ("model.encoder.hidden_sizes", "model.classifier_sizes", "model.decoder_sizes"):
        _check_sizes(cfg, key, allow_empty=True)
    _check_data_settings(cfg)
    _check_augment(cfg)
    _check_variational(cfg)
    _check_downstream(cfg)
    _check_contrastive(cfg)
    _check_distributed(cfg)
    _check_manual_optimisation(cfg)
    _check_registration(cfg)
    check_environment(cfg)
    _check_encoder_fits_features(cfg)  # imports torch: after every light check
    _check_pretrained_brackets(cfg)  # imports torch too
    _check_evaluation_settings(cfg)  # imports the evaluations (torch, Lightning)
    _check_unlabelled(cfg)


def load_plugins(cfg: DictConfig) -> None:
    """Import the modules `plugins` lists (`+plugins=[mypackage.splits]`): what they register (a split mode, a kind
    of source, an evaluation, a front-end) is known to the checks and the run. A module that cannot be imported is
    one line."""
    import importlib

    for name in OmegaConf.select(cfg, "plugins") or []:
        try:
            importlib.import_module(str(name))
        except ImportError as exc:
            raise UserError(
                f"plugins: cannot import {name!r} ({exc})", "list importable modules, e.g. +plugins=[mypackage.splits]"
            ) from None
        except Exception as exc:  # the module runs but fails (a name registered twice, a bug): its line, not a traceback
            raise UserError(
                f"plugins: importing {name!r} failed: {type(exc).__name__}: {exc}",
                f"fix that module (python -c 'import {name}' shows the traceback)",
            ) from None


def _name(cfg: DictConfig, key: str) -> str:
    """The name the user knows a setting by: the alias that feeds `key` where there is one."""
    node, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, node) if node else cfg
    raw = OmegaConf.to_container(parent, resolve=False).get(leaf) if OmegaConf.is_dict(parent) else None  # type: ignore[union-attr]
    return next((alias for alias in ALIASES if raw == "${" + alias + "}"), key)


def _check_aliases_used(cfg: DictConfig, overrides: list[str]) -> None:
    typed = {o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o}
    for alias in ALIASES:
        if alias in typed and not uses_alias(cfg, alias):
            model = str(OmegaConf.select(cfg, "model._target_") or "?").rsplit(".", 1)[-1]
            raise UserError(
                f"{alias}={OmegaConf.select(cfg, alias)} is not used by {model}: it would be ignored",
                f"drop {alias}=..., or choose a model that has it (gamma: model=dsae, or model=vae model.classifier=true)",
            )


def _check_data_settings(cfg: DictConfig) -> None:
    """The data settings' rules live beside them (data/settings.py): building them checks each once."""
    data = OmegaConf.select(cfg, "data")
    if data is None:
        return
    from genre_style.data.settings import DataSettings  # front-end and split registries: light

    DataSettings.from_config(data)


def _check_encoder_fits_features(cfg: DictConfig) -> None:
    """The encoder reads the front-end's kind (`Encoder.reads`, `front_ends.FrontEnd.kind`). Imports the encoder's
    class (and so torch): run after the checks that need nothing heavy, so a bad value still answers at once."""
    from hydra.utils import get_class

    from genre_style.data import front_ends

    target, model = OmegaConf.select(cfg, "model.encoder._target_"), OmegaConf.select(cfg, "model._target_")
    if not target or (model and not getattr(get_class(str(model)), "reads_configured_encoder", True)):
        return  # a model that builds its own encoder (the logistic regression) reads any front-end
    features = OmegaConf.select(cfg, "data.clips.features")
    kind = front_ends.get(features).kind
    reads = tuple(getattr(get_class(str(target)), "reads", front_ends.KINDS))
    name = str(target).rsplit(".", 1)[-1]
    if kind not in reads:
        fitting = [n for k in reads for n in front_ends.names(k)]
        raise UserError(
            f"encoder {name} cannot read features={features} (a {kind}; it reads {' or '.join(reads)}: "
            f"features={' or '.join(fitting)})",
            f"add features={fitting[0]}, or use encoder=mlp for features={features}",
        )
    encoder = get_class(str(target))
    required = getattr(encoder, "front_end", None)
    if required and front_ends.get(features).name != required:
        raise UserError(
            f"encoder {name} cannot read features={features} (it was trained on features={required} only)",
            f"add features={required}",
        )
    if hasattr(encoder, "check_settings"):
        encoder.check_settings(OmegaConf.to_container(OmegaConf.select(cfg, "model.encoder"), resolve=False))
    if hasattr(encoder, "check_data_sample_rate"):  # a pretrained model whose rate only it knows (encoder=hf)
        encoder.check_data_sample_rate(
            OmegaConf.to_container(OmegaConf.select(cfg, "model.encoder"), resolve=False),
            OmegaConf.select(cfg, "data.clips.sample_rate"),
        )


def _check_unlabelled(cfg: DictConfig) -> None:
    """`data.source.unlabelled` trains only label-free terms (a decoder's reconstruction, `model.contrastive_weight`'s song
    contrastive term): a model without one would read those songs and learn nothing from them. Imports the model's
    class."""
    from hydra.utils import get_class

    folders, target = OmegaConf.select(cfg, "data.source.unlabelled"), OmegaConf.select(cfg, "model._target_")
    if not folders or not target:
        return
    has_decoder = bool(getattr(get_class(str(target)), "has_decoder", False))
    if not has_decoder and not (_number(cfg, "model.contrastive_weight") or 0):
        name = str(target).rsplit(".", 1)[-1]
        raise UserError(
            f"data.source.unlabelled gives songs without a genre, but {name} has no label-free loss term to train on them",
            "use a model with a decoder (model=dsae or model=autoencoder) or add model.contrastive_weight=0.5, "
            "or drop data.source.unlabelled",
        )


def _check_augment(cfg: DictConfig) -> None:
    augment = OmegaConf.select(cfg, "model.augment")
    if not augment:
        return
    for key in ("freq_masks", "time_masks", "gain_db", "band_tilt", "mixup_alpha"):
        value = _number(cfg, f"model.augment.{key}")
        if value is not None and value < 0:
            raise UserError(f"model.augment.{key}={value} must be >= 0", f"e.g. model.augment.{key}=0 to switch it off")
    for key in ("freq_mask_width", "time_mask_width"):
        _check_range(
            cfg, f"model.augment.{key}", 0.0, 1.0, True, f"the widest mask as a share of the axis, e.g. model.augment.{key}=0.1"
        )


def _check_downstream(cfg: DictConfig) -> None:
    """`evaluation.downstream` runs after training: its folders are checked before training starts."""
    entries = OmegaConf.select(cfg, "evaluation.downstream")
    if not entries:
        return
    from pathlib import Path

    from genre_style.data.corpus import FALLBACK, source_kind

    for i, entry in enumerate(entries):
        root = entry.get("root") if hasattr(entry, "get") else None
        if not root:
            raise UserError(
                f"evaluation.downstream[{i}] has no root",
                "give each entry a labelled folder: 'evaluation.downstream=[{root:/path/to/gtzan-mini,genres:[blues,disco]}]'",
            )
        path = Path(str(root)).expanduser()
        if not path.exists() or (not path.is_dir() and source_kind(path) == FALLBACK):
            raise UserError(
                f"evaluation.downstream[{i}].root={root} is neither a folder nor a manifest",
                "point it at a GTZAN-layout folder or a CSV/Parquet manifest (path,genre rows)",
            )


def _check_evaluation_settings(cfg: DictConfig) -> None:
    """Every `evaluation.<key>` is read by a registered analysis (or by the run: `downstream`): a typo in
    `+evaluation.<key>` is refused before training, not after it."""
    settings = OmegaConf.select(cfg, "evaluation")
    if settings:
        import genre_style.evaluation.evaluate  # noqa: F401  (registers the built-in analyses)
        from genre_style.evaluation.analyses import check_settings

        check_settings(settings, elsewhere=("downstream",))


def _check_pretrained_brackets(cfg: DictConfig) -> None:
    """`evaluation.pretrained_brackets`' names (evaluation/pretrained_brackets.py): shown beside every run."""
    brackets = OmegaConf.select(cfg, "evaluation.pretrained_brackets")
    if brackets:
        import importlib.util

        from genre_style.evaluation.pretrained_brackets import parse_all

        for bracket in parse_all(list(brackets) if OmegaConf.is_list(brackets) else str(brackets)):
            if bracket.kind == "hear" and importlib.util.find_spec(bracket.args[0].partition(".")[0]) is None:
                raise UserError(
                    f"evaluation.pretrained_brackets: the HEAR module {bracket.args[0]} is not installed",
                    "install the package that provides it, or leave the bracket out",
                )


def _check_contrastive(cfg: DictConfig) -> None:
    weight, temperature = _number(cfg, "model.contrastive_weight"), _number(cfg, "model.contrastive_temperature")
    if weight is not None and weight < 0:
        raise UserError(f"model.contrastive_weight={weight} must be >= 0", "e.g. model.contrastive_weight=0.5, or 0 for off")
    if temperature is not None and temperature <= 0:
        raise UserError(f"model.contrastive_temperature={temperature} must be positive", "e.g. 0.1")


def _check_variational(cfg: DictConfig) -> None:
    for key in ("beta", "mi_weight", "tc_weight", "dimwise_kl_weight", "kl_warmup_epochs"):
        value = _number(cfg, f"model.{key}")
        if value is not None and value < 0:
            raise UserError(f"model.{key}={value} must be >= 0", f"a weight of the KL terms, e.g. model.{key}=1.0")
    if OmegaConf.select(cfg, "model.classifier") is True:
        genres = OmegaConf.select(cfg, "data.source.genres")
        if OmegaConf.is_list(genres) and len(genres) < 2:
            raise UserError(
                f"model.classifier=true needs genre labels to learn from, but data.source.genres={list(genres)} has one",
                "give at least two genres (data.source.genres=[classical,jazz]), or model.classifier=false",
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
