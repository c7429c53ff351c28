"""What Hydra says about the running job: the overrides typed, whether it is a multirun, the config flattened."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from genre_style.urls import redact_url


def command_line() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # no Hydra job (tests, notebooks): nothing was typed
        return []


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:  # no Hydra job (tests, notebooks)
        return False


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
