"""Checkpoints as training writes them (the model, its class names, the data module's preprocessing), built in-process
in a second: for the commands that read a model (embed, predict, export) where the weights' values do not matter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from genre_style.data.audio import ClipSpec

GENRES = ["classical", "jazz", "pop", "metal"]
# experiment=best's encoder (conf/encoder/logmel_cnn.yaml and features=logmel), and the demo's MLP DSAE on raw_pool.
LOGMEL = ClipSpec(features="logmel", n_fft=1024, frame_hop=256, n_mels=64)
LOGMEL_CNN = {"_target_": "genre_style.models.encoders.LogMelCNN", "channels": [16, 32, 64, 64], "dropout": 0.3}


def build(kind: str = "dsae", spec: ClipSpec | None = None, seed: int = 0, **kwargs: Any) -> Any:
    """A model of `kind` (dsae, autoencoder) for `spec`'s features, its batch-norm statistics made non-trivial."""
    from genre_style.models.autoencoder import Autoencoder
    from genre_style.models.dsae import DeepSoftmaxAutoencoder

    spec = spec or ClipSpec()
    torch.manual_seed(seed)
    cls = {"dsae": DeepSoftmaxAutoencoder, "autoencoder": Autoencoder}[kind]
    model = cls(input_shape=spec.feature_shape, num_classes=len(GENRES), class_names=GENRES, **kwargs)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _plain(value: Any) -> Any:
    """Hydra's config nodes as the dicts and lists a weights-only checkpoint holds."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save(model: Any, spec: ClipSpec, path: Path, standardize: bool = True, seed: int = 0) -> Path:
    """`model` and `spec` written as a genre-style `best.ckpt`, with a standardisation of the spec's shape (per band for
    maps) when `standardize`."""
    rng = np.random.default_rng(seed)
    shape = (spec.feature_shape[0], 1) if len(spec.feature_shape) == 2 else spec.feature_shape
    mean = (rng.normal(size=shape) * 0.1).tolist() if standardize else None
    std = (rng.random(shape) + 0.5).tolist() if standardize else None
    if spec.features == "logmel" and standardize:  # dB values: large and negative
        mean = (rng.normal(size=shape) * 5 - 40).tolist()
        std = (rng.random(shape) * 5 + 5).tolist()
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": _plain(dict(model.hparams)),
            "genre_style": {"model_class": f"{type(model).__module__}.{type(model).__name__}", "class_names": GENRES},
            "GenreDataModule": {"spec": spec.as_dict(), "standardize_mean": mean, "standardize_std": std},
        },
        path,
    )
    return path


def from_experiment(name: str, tmp_path: Path) -> tuple[Any, ClipSpec]:
    """The model `experiment=<name>` trains (its objective, encoder and front-end, composed by Hydra as training
    composes it), untrained, and its clip spec."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[f"experiment={name}", f"paths.output_root={tmp_path}", f"paths.output_dir={tmp_path}/run", "logger=none"],
        )
    spec = ClipSpec(**cfg.data.clips)
    torch.manual_seed(0)
    model = instantiate(
        cfg.model, input_shape=spec.feature_shape, input_kind=spec.front_end.kind, num_classes=len(GENRES), class_names=GENRES
    )
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval(), spec
