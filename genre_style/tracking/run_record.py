"""What an MLflow run says about itself, made from the config and the results: name, tags, params, description.

Readable first: the full resolved config is the run's `config.yaml` artifact; params hold the settings that change
what is learned, once each, without None, class paths or machine paths (the data root excepted).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from genre_style.metric_names import ACC, KNN_ACC, MACRO, MIG, PER_CLASS, PROBE_ACC, RECON, SPACES, TRACK_ACC, per_class
from genre_style.setting_roles import ALIASES, BOOKKEEPING, uses_alias
from genre_style.urls import redact_url

# The best checkpoint's figures the run's description shows (metric_names.py), on val and test.
DESCRIBED = frozenset(
    {ACC, TRACK_ACC, RECON, per_class(PER_CLASS[-1], MACRO), MIG}
    | {f"{name}_{space}" for name in (KNN_ACC, PROBE_ACC) for space in SPACES}
)
# Not params: where things go, how they are shown, bookkeeping (the config.yaml artifact has them all), and how the
# best checkpoint is written.
NOT_PARAMS = BOOKKEEPING + ("callbacks.model_checkpoint.",)


NAMED_PARTS = {
    "model": "model",
    "model.encoder": "encoder",
    "model.optimizer": "model.optimizer",
    "model.scheduler": "model.scheduler",
}


def choices(cfg: DictConfig) -> dict[str, str]:
    """The config groups the run was composed from (`model=dsae`, `encoder=mlp`, ...); class names outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    try:
        picked = {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if v is not None}
    except ValueError:  # no Hydra job (tests, notebooks)
        picked = {}
    picked.setdefault("model", str(cfg.model._target_).rsplit(".", 1)[-1])
    picked.setdefault("encoder", str(OmegaConf.select(cfg, "model.encoder._target_") or "none").rsplit(".", 1)[-1])
    picked.setdefault("data", "synthetic" if OmegaConf.select(cfg, "data.source.synthetic") else "gtzan")
    return picked


def logged_model_name(cfg: DictConfig) -> str:
    """The name a run's MLflow model is logged under: what it is, `<model>-<encoder>` by config group (`dsae-logmel_cnn`),
    so a store's models tell themselves apart (`runs:/<run id>/<name>`; the run's tag `genre_style.logged_model`)."""
    import re

    picked = choices(cfg)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{picked['model']}-{picked['encoder']}")


def data_name(root: str) -> str:
    """The data folder's name (for GTZAN's own `genres/` folder, the name of the folder holding it), or a manifest's
    file name without its suffix."""
    from genre_style.data.corpus import source_for

    return source_for(root).label()


def run_name(cfg: DictConfig) -> str:
    """Short enough for MLflow's runs table: `dsae · gtzan · track · s42` (the encoder where it is not the model's own)."""
    picked = choices(cfg)
    model = (
        picked["model"]
        if picked.get("encoder") in (None, "mlp", "mlp_tanh", "MLPEncoder")
        else f"{picked['model']}+{picked['encoder']}"
    )
    return f"{model} · {data_name(str(cfg.data.source.root))} · {cfg.data.split.mode} · s{cfg.seed}"


def run_tags(cfg: DictConfig) -> dict[str, str]:
    """What runs are filtered by: model, encoder, features, data, split, seed, and the user's `tags.*`."""
    picked = choices(cfg)
    tags = {
        "model": picked["model"],
        "encoder": picked["encoder"],
        "features": str(cfg.data.clips.features),
        "data": data_name(str(cfg.data.source.root)),
        "split": str(cfg.data.split.mode),
        "seed": str(cfg.seed),
    }
    tags.update({str(k): str(v) for k, v in (cfg.get("tags") or {}).items()})
    return tags


def readable_params(cfg: DictConfig) -> dict[str, Any]:
    """The resolved settings that change what is learned, each once: a `_target_` becomes its class's name under its
    node's key (`model`, `encoder`, `model.optimizer`); a setting that only repeats another (`model.gamma: ${gamma}`)
    is left out; no None."""
    unused = {alias for alias in ALIASES if not uses_alias(cfg, alias)}  # e.g. gamma for the two-layer net
    raw = OmegaConf.to_container(cfg, resolve=False)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    params: dict[str, Any] = {}

    def walk(raw_node: Any, node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(raw_node.get(key) if isinstance(raw_node, dict) else None, value, f"{prefix}{key}.")
            return
        key = prefix[:-1]
        if node is None or key in unused or key.startswith(NOT_PARAMS) or key.endswith("._recursive_"):
            return
        if isinstance(raw_node, str) and raw_node.startswith("${") and raw_node.endswith("}") and ":" not in raw_node:
            return  # an interpolation of another setting, which is logged under its own name
        if key.endswith("._target_"):  # the model's parts by class name; the data module, trainer, callbacks go unsaid
            key, node = key.removesuffix("._target_"), str(node).rsplit(".", 1)[-1]
            if key not in NAMED_PARTS:
                return
            key = NAMED_PARTS[key]
        params[key] = redact_url(node) if isinstance(node, str) else node

    walk(raw, resolved, "")
    return params


def description(cfg: DictConfig, metrics: dict[str, float], history: list[dict[str, float]]) -> str:
    """The run's Markdown note (`mlflow.note.content`): what was trained on what, the best epoch, the test figures."""
    from genre_style.evaluation.stats import best_epoch as find_best

    picked, epochs = choices(cfg), len(history)
    best_epoch = find_best(history, str(cfg.monitor.metric), str(cfg.monitor.mode))
    lines = [
        f"**{picked['model']}** (encoder `{picked['encoder']}`, features `{cfg.data.clips.features}`) on "
        f"`{data_name(str(cfg.data.source.root))}` ({', '.join(map(str, cfg.data.source.genres)) if OmegaConf.is_list(cfg.data.source.genres) else cfg.data.source.genres}), "
        f"{cfg.data.split.mode} split, seed {cfg.seed}.",
        "",
    ]
    if best_epoch is not None:
        lines.append(
            f"Best epoch {best_epoch} of {epochs} by `{cfg.monitor.metric}`; the final figures are the best checkpoint's."
        )
    names = sorted(
        {
            k.split("/", 1)[1]
            for k in metrics
            if k.startswith(("val/", "test/")) and k.count("/") == 1 and k.split("/", 1)[1] in DESCRIBED
        }
    )
    if names:  # the best checkpoint's figures: the per-epoch curves' last points are the last epoch's, not these
        cell = lambda key: f"{metrics[key]:.4f}" if key in metrics else "-"  # noqa: E731
        lines += ["", "| best checkpoint | val | test |", "|---|---|---|"]
        lines += [f"| {name} | {cell(f'val/{name}')} | {cell(f'test/{name}')} |" for name in names]
    lines += [
        "",
        "Plots: `plots/` (confusion matrices, PCA of input, embedding and logits, learning curves); "
        "the full config: `config.yaml`; the model: this run's logged model (an MLflow pyfunc: audio in, genre "
        "probabilities and embedding out).",
    ]
    return "\n".join(lines)
