"""What a resume needs beyond Lightning's checkpoint to end where an uninterrupted run ends, and what it may change.

Lightning's checkpoint holds the weights, the optimiser, the loops and the callbacks' states, but not the
random generators (dropout masks, augmentation, DataLoader seeds), so a resumed run draws different numbers
from the first epoch on. The shuffling order's generator is saved with the data module's state (`GenreDataModule.state_dict`).
"""

from __future__ import annotations

import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping


class RandomState(pl.Callback):
    """Saves torch's, numpy's and Python's random states in each full checkpoint and sets them when a fit restores
    one. Between that restore and the first training step a resumed fit draws what an uninterrupted one draws
    between the checkpoint and its next step (the training DataLoader's seed; Lightning isolates the sanity
    check's random numbers)."""

    def state_dict(self) -> dict[str, Any]:
        return {
            "torch": torch.get_rng_state(),
            "numpy": _plain_numpy_state(np.random.get_state()),
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        np.random.set_state(tuple(state["numpy"]))
        random.setstate(state["python"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _plain_numpy_state(state: Any) -> tuple[Any, ...]:
    """numpy's legacy random state with its key array as a list: plain data, which `torch.load(weights_only=True)`
    reads (`np.random.set_state` takes the list back as it is)."""
    name, keys, position, has_gauss, cached_gaussian = state
    return (name, keys.tolist(), int(position), int(has_gauss), float(cached_gaussian))


class ResumableEarlyStopping(EarlyStopping):
    """Lightning's EarlyStopping, except that a resume keeps the patience given now, not the checkpoint's: patience
    is a training budget, which a resume may change (`callbacks.early_stopping.patience=...`)."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({**state_dict, "patience": self.patience})
