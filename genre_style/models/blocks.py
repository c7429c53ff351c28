"""Fully connected building blocks configured by lists of layer sizes."""

from __future__ import annotations

from typing import Sequence

from torch import nn

ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
}


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}") from None


def mlp(sizes: Sequence[int], act: str = "relu", dropout: float = 0.0, last_activation: bool = False) -> nn.Sequential:
    """Linear layers through `sizes` (input first); activation and dropout after every hidden layer.

    The last layer is left linear unless `last_activation` (then it also gets activation and dropout).
    """
    layers: list[nn.Module] = []
    n_linear = len(sizes) - 1
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < n_linear - 1 or last_activation:
            layers.append(activation(act))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
